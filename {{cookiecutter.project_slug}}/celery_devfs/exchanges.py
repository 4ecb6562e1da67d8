"""Exchange types as RabbitMQ routes them: direct, fanout, topic and headers.

kombu's virtual transports route topic keys by a regular expression in which `#`
needs at least one word (RabbitMQ: zero or more, so `a.#` takes `a`), and have no
headers exchange. Here a topic binding keeps its key and is matched word by word;
a headers binding keeps its arguments (x-match all, any, all-with-x, any-with-x)
and is matched against the message's headers. The type itself is kept in the
control folder (bindings.py), so a process that never declared an exchange routes
as the one that did.
"""

import json

from kombu.transport.virtual.exchange import DirectExchange, ExchangeType, FanoutExchange

# RabbitMQ's own exchanges, there without a declaration.
PREDECLARED = {
    "amq.direct": "direct",
    "amq.fanout": "fanout",
    "amq.topic": "topic",
    "amq.headers": "headers",
    "amq.match": "headers",
}


def topic_matches(binding_key, routing_key):
    """RabbitMQ's topic match: `*` is one word, `#` zero or more, words split on dots."""
    pattern, words = binding_key.split("."), routing_key.split(".")
    seen = {}

    def match(p, w):  # pattern[p:] against words[w:]
        if (p, w) not in seen:
            if p == len(pattern):
                found = w == len(words)
            elif pattern[p] == "#":
                found = match(p + 1, w) or (w < len(words) and match(p, w + 1))
            else:
                found = w < len(words) and pattern[p] in ("*", words[w]) and match(p + 1, w + 1)
            seen[p, w] = found
        return seen[p, w]

    return match(0, 0)


class TopicExchange(DirectExchange):
    """Delivered as a direct exchange is, to the queues its lookup finds."""

    type = "topic"

    def prepare_bind(self, queue, exchange, routing_key, arguments):
        return routing_key, "", queue

    def lookup(self, table, exchange, routing_key, default):
        return {queue for key, _, queue in table if topic_matches(key, routing_key or "")}


def headers_match(arguments, headers):
    """RabbitMQ's headers match of a binding's arguments against a message's headers."""
    how = arguments.get("x-match", "all")
    with_x = how.endswith("-with-x")
    wanted = {k: v for k, v in arguments.items() if k != "x-match" and (with_x or k[:2] != "x-")}
    # A value of None (AMQP's void) asks only that the header be there.
    hits = [k in headers and (v is None or headers[k] == v) for k, v in wanted.items()]
    return any(hits) if how.startswith("any") else all(hits)


class HeadersExchange(ExchangeType):
    type = "headers"

    def prepare_bind(self, queue, exchange, routing_key, arguments):
        # The arguments, as JSON, where the other types keep a pattern.
        return routing_key, json.dumps(arguments or {}, sort_keys=True), queue

    def lookup(self, table, exchange, routing_key, default):
        return set()  # routes by headers, which only deliver() has

    def deliver(self, message, exchange, routing_key, **kwargs):
        headers = message.get("headers") or {}
        queues = set()
        for _, arguments, queue in self.channel.get_table(exchange):
            try:
                arguments = json.loads(arguments or "{}")
            except ValueError:
                continue  # written by a version without headers exchanges
            if isinstance(arguments, dict) and headers_match(arguments, headers):
                queues.add(queue)
        for queue in queues:
            self.channel._put(queue, message, **kwargs)


TYPES = {
    "direct": DirectExchange,
    "fanout": FanoutExchange,
    "topic": TopicExchange,
    "headers": HeadersExchange,
}
