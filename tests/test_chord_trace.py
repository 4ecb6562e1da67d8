"""make bench's chord breakdown (chord_trace.py): which events make a chord's critical
path, in-process on a trace written by hand."""

from chord_trace import PATH, breakdown

# One chord, times in µs: header tasks a and b, body c. b ends last, so the path goes
# through b; the worker found c while it was busy (no wake-up of its own).
TRACE = """
100 1 written a
200 1 written b
250 2 woken
300 2 claimed a
320 2 received a
350 2 claimed b
370 2 received b
400 3 started a
420 4 started b
450 3 storing a
500 3 stored a
600 4 storing b
700 4 stored b
900 4 written c
1000 2 claimed c
1020 2 received c
1100 3 started c
1150 3 storing c
1200 3 stored c
2000 9 woken
"""


def test_the_path_follows_the_last_header_task_then_the_body():
    rows = [line.split() for line in TRACE.strip().splitlines()]
    lines = [" ".join([str(int(at) * 1000), *rest]) for at, *rest in rows]  # in ns
    rows = breakdown(lines, [(0, 1_500_000)])
    segments = [values[0] * 1000 for name, values in rows.items() if name != "total"]  # µs
    assert len(segments) == len(PATH)
    assert segments == [
        200,  # send, up to b's message
        50,  # b written -> woken (250)
        100,  # -> b claimed (350)
        20,  # -> b's request (370)
        50,  # -> b started in its pool process (420)
        180,  # b runs (-> 600)
        100,  # b's result written (-> 700)
        200,  # chord count, c sent (-> 900)
        100,  # c written -> claimed (1000): no wake-up in between (the worker was busy;
        0,  # the one at 2000 is after the chord), so the wait is c's wake-up, its claim 0
        20,
        80,
        50,
        50,
        300,  # c's result -> the client has it (1500)
    ]
    assert sum(segments) == rows["total"][0] * 1000 == 1500
