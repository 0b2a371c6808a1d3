#!/usr/bin/env python3
"""test_mgc_plot: tools/mgc-plot turns recorded MGC_TRACE logs into valid
PNG charts, and refuses a log without trace lines with a clear error.

    test_mgc_plot.py MGC_PLOT TRACE.log...

The recorded logs (tests/tools/*.log) are real output of build/tools/mgc-demo:
  trace-concurrent.log  MGC_TRACE=2, the demo's stdout and stderr together
                        (so non-trace lines and detail lines are mixed in)
  trace-stw-limit.log   MGC_TRACE=1 MGC_CONCURRENT=0 MGC_MEMLIMIT=64MiB
                        (flags "(stw)" and "(limit)"), first 40 lines
  trace-gogc-off.log    MGC_GOGC=off, three gc_collect calls of a small
                        program: no goal, printed "inf MB goal"
mgc-plot needs python3-matplotlib; without it this test fails (CI installs
it with tools/setup-deps), it does not skip.
"""
import os
import struct
import subprocess
import sys
import tempfile
import zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)
    return ok


def run(plot, *args):
    return subprocess.run([plot, *args], capture_output=True, text=True, timeout=120)


def png_chunks(data):
    """(type, body) of every chunk, checking each CRC; raises ValueError."""
    pos, chunks = len(PNG_SIGNATURE), []
    while pos < len(data):
        if pos + 8 > len(data):
            raise ValueError("truncated chunk header at byte %d" % pos)
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        crc_at = pos + 8 + length
        if crc_at + 4 > len(data):
            raise ValueError("truncated %r chunk" % kind)
        (crc,) = struct.unpack(">I", data[crc_at:crc_at + 4])
        if zlib.crc32(kind + body) != crc:
            raise ValueError("bad CRC in %r chunk" % kind)
        chunks.append((kind, body))
        pos = crc_at + 4
    return chunks


def check_png(path, name):
    if not check(os.path.isfile(path) and os.path.getsize(path) > 0,
                 f"{name}: a nonempty PNG was written"):
        return
    with open(path, "rb") as f:
        data = f.read()
    if not check(data.startswith(PNG_SIGNATURE), f"{name}: PNG signature"):
        return
    try:
        chunks = png_chunks(data)
    except ValueError as e:
        check(False, f"{name}: chunk structure ({e})")
        return
    check(bool(chunks) and chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND",
          f"{name}: IHDR first, IEND last, every CRC right")
    width, height = struct.unpack(">II", chunks[0][1][:8])
    check(width >= 600 and height >= 400, f"{name}: chart size {width}x{height} (at least 600x400)")
    idat = b"".join(body for kind, body in chunks if kind == b"IDAT")
    try:
        pixels = zlib.decompress(idat)
        check(len(pixels) > width * height, f"{name}: image data decompresses ({len(pixels)} bytes)")
    except zlib.error as e:
        check(False, f"{name}: image data decompresses ({e})")


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: test_mgc_plot.py MGC_PLOT TRACE.log...")
    plot, logs = sys.argv[1], sys.argv[2:]
    with tempfile.TemporaryDirectory(prefix="mgc-plot-test.") as tmp:
        for log in logs:
            name = os.path.basename(log)
            out = os.path.join(tmp, name + ".png")
            r = run(plot, "-o", out, log)
            if not check(r.returncode == 0, f"{name}: mgc-plot exits 0"):
                print(r.stderr, end="")
                continue
            check_png(out, name)

        # A log without a single trace line: lines that look almost like
        # one, MGC_TRACE=2 detail lines, an mgc: report, binary junk.
        garbage = os.path.join(tmp, "garbage.log")
        with open(garbage, "wb") as f:
            f.write(b"hello, this is not a trace\n"
                    b"gc 1 detail: cpu 3.679 ms (assist 0.106 ms), 1 termination attempts\n"
                    b"gc 2 @0.5s: 1+2+3 ms clock\n"
                    b"mgc: ignoring MGC_GOGC=\"x\": expected a percentage; using the default\n"
                    b"\x00\xff\xfe binary \x89PNG\n")
        out = os.path.join(tmp, "garbage.png")
        r = run(plot, "-o", out, garbage)
        check(r.returncode != 0, f"garbage log: nonzero exit ({r.returncode})")
        check("no MGC_TRACE=1 lines" in r.stderr and r.stderr.startswith("mgc-plot: "),
              "garbage log: one clear 'mgc-plot: no MGC_TRACE=1 lines' error")
        check(not os.path.exists(out), "garbage log: no PNG written")
        if r.stderr:
            print("     (stderr: " + r.stderr.strip() + ")")

        empty = os.path.join(tmp, "empty.log")
        open(empty, "w").close()
        r = run(plot, "-o", os.path.join(tmp, "empty.png"), empty)
        check(r.returncode != 0 and "no MGC_TRACE=1 lines" in r.stderr, "empty log: clear error, nonzero exit")

        r = run(plot, "-o", os.path.join(tmp, "x.png"), os.path.join(tmp, "missing.log"))
        check(r.returncode != 0 and "cannot read" in r.stderr, "missing log: clear error, nonzero exit")

    if failures:
        print(f"{len(failures)} check(s) failed")
        sys.exit(1)


if __name__ == "__main__":
    main()
