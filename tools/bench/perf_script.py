"""perf_script: reading `perf script -F comm,tid,time,event,ip,sym,trace`
output, for tools/bench/offcpu and tools/bench/pause/gap-profile.

records(text) yields one (time, tid, comm, event, trace, frames) per
record: trace is the tracepoint's text (empty for a CPU sample), frames the
user-space function names of its stack, innermost first (kernel frames,
whose addresses start with ffff, are left out).  own_frames(frames) drops
the C library's frames, so that what is left starts at the mgc or program
function that called into it.
"""
import re

HEADER = re.compile(r"\s*(\S+)\s+(\d+)\s+([\d.]+):\s+(\S+):\s*(.*)")

# C library frames: skipped when naming where a thread slept or waited.
LIBC_FRAME = re.compile(r"^(_+|lll_|futex_|pthread_|clock_nanosleep|nanosleep|syscall$|\[unknown\])")


def records(text):
    cur = None
    for line in text.splitlines():
        m = HEADER.match(line)
        if m:
            if cur:
                yield cur
            cur = (float(m.group(3)), int(m.group(2)), m.group(1), m.group(4), m.group(5), [])
        elif cur is not None and line.strip():
            parts = line.split(None, 1)
            if len(parts) == 2 and not parts[0].startswith("ffff"):  # user frames only
                cur[5].append(parts[1].strip().split("+")[0])
    if cur:
        yield cur


def own_frames(frames):
    return [f for f in frames if not LIBC_FRAME.match(f)]
