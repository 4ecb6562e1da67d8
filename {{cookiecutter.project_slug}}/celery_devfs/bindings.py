"""Bindings: which queues an exchange routes to, in control/<exchange>.exchange (the
file kombu's filesystem transport keeps), as a JSON list of [routing key, pattern,
queue] rows, rewritten whole under a lock."""

import re
from collections import namedtuple

from kombu.exceptions import ChannelError

from . import control
from .folders import DamagedFile

Row = namedtuple("Row", "routing_key pattern queue")  # what kombu's exchange types read
NAME = re.compile(r"[A-Za-z0-9_.-]*")  # kombu's rule: an exchange name is a file name


class Bindings:
    def __init__(self, folder):
        self.folder = folder

    def file(self, exchange):
        if not isinstance(exchange, str) or not NAME.fullmatch(exchange) or set(exchange) == {"."}:
            raise ChannelError(f"Invalid exchange name: {exchange!r}")
        return self.folder / f"{exchange}.exchange"

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
