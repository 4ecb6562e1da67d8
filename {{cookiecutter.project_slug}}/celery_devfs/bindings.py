"""Exchanges: which queues each routes to, in control/<exchange>.exchange (the file
kombu's filesystem transport keeps), as a JSON list of [routing key, pattern, queue]
rows, and what it was declared as, in control/<exchange>.declared: {"type", "durable",
"auto_delete", "arguments", "name"}. Both rewritten whole under a lock; the file
names as names.py keeps names on disk."""

from collections import namedtuple

from . import control, names
from .folders import DamagedFile

Row = namedtuple("Row", "routing_key pattern queue")  # what kombu's exchange types read
DECLARED = ("type", "durable", "auto_delete", "arguments")


class Bindings:
    def __init__(self, folder):
        self.folder = folder

    def file(self, exchange, suffix="exchange"):
        return self.folder / f"{names.on_disk(exchange, 'exchange')}.{suffix}"

    def declared(self, exchange):
        """What `exchange` was declared as ({type, durable, auto_delete, arguments}),
        by any process; None if it was not (or by a version that did not keep it)."""

        def check(info):
            if not isinstance(info, dict) or not isinstance(info.get("type"), str):
                raise DamagedFile("not {type: ..., durable: ..., ...}")
            return {key: info.get(key) for key in DECLARED}

        return control.read(self.file(exchange, "declared"), check, lambda: None)

    def declare(self, exchange, declaration):
        file = self.file(exchange, "declared")
        info = {**declaration, "name": exchange}
        control.change(file, lambda file: None, lambda _: info)

    def remove(self, exchange):
        """Delete `exchange` and its bindings, as RabbitMQ does (its queues stay)."""
        for suffix in ("exchange", "declared"):
            control.change(self.file(exchange, suffix), lambda file: None, lambda _: None)

    def table(self, exchange):
        return self._read(self.file(exchange))

    def bind(self, exchange, row):
        control.change(self.file(exchange), self._read, lambda rows: _with(rows, Row(*row)))

    def unbind(self, exchange, row):
        control.change(self.file(exchange), self._read, lambda rows: _without(rows, Row(*row)))

    def forget(self, queue):
        """Unbind `queue` from every exchange (it expired)."""
        for file in self.folder.glob("*.exchange"):
            control.change(file, self._read, lambda rows: [r for r in rows if r.queue != queue])

    @staticmethod
    def _read(file):
        def check(rows):
            if not isinstance(rows, list) or not all(
                isinstance(row, list) and len(row) == 3 and all(isinstance(v, str) for v in row)
                for row in rows
            ):
                raise DamagedFile("not a list of [routing key, pattern, queue]")
            return [Row(*row) for row in rows]

        return control.read(file, check, list)


def _with(rows, row):
    return rows if row in rows else [row, *rows]


def _without(rows, row):
    return [r for r in rows if r != row]
