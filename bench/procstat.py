#!/usr/bin/python3
"""CPU time and memory of a process and all its descendants, from /proc.

  procstat.py cpu PID   -> utime+stime of the tree in clock ticks (see getconf CLK_TCK)
  procstat.py rss PID   -> VmRSS of the tree in KiB
  procstat.py pids PID  -> the PIDs of the tree, one per line (PID first)

nginx = master + workers, haproxy and mailgate = one process with threads (whose times
/proc/PID/stat already includes). Debian python3, standard library only.
"""
import os
import sys


def _stat_fields(pid):
    """Fields of /proc/PID/stat after the command name: [state, ppid, ...]."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        text = f.read().decode("ascii", "replace")
    return text[text.rfind(")") + 2:].split()


def tree(root):
    """root and its descendants (live ones), root first."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            ppid = int(_stat_fields(name)[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if not os.path.exists(f"/proc/{pid}"):
            continue
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cpu_ticks(root):
    total = 0
    for pid in tree(root):
        try:
            f = _stat_fields(pid)
            total += int(f[11]) + int(f[12])  # utime, stime (fields 14 and 15)
        except (OSError, IndexError, ValueError):
            pass
    return total


def rss_kib(root):
    total = 0
    for pid in tree(root):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


def main(argv):
    if len(argv) != 3 or argv[1] not in ("cpu", "rss", "pids"):
        sys.exit(__doc__)
    root = int(argv[2])
    if argv[1] == "cpu":
        print(cpu_ticks(root))
    elif argv[1] == "rss":
        print(rss_kib(root))
    else:
        print("\n".join(str(p) for p in tree(root)))


if __name__ == "__main__":
    main(sys.argv)
