#!/usr/bin/env python3
"""Groups a `perf report --sort sym --stdio -g none` listing by where the samples fell and
turns each group's share into µs per request. Used by scripts/v7-profile.sh:

    profile-categories.py SYMBOLS_FILE CPU_US_PER_REQUEST
"""
import re
import sys

GROUPS = [
    # What registered (fixed) files would save: the lookup of a descriptor in the file table
    # and its reference count, on every operation.
    ("file lookups (fget/fput: what registered files save)", re.compile(
        r"^(__)?fget|^fput|^__fput|^fdget|^io_file_get")),
    ("io_uring's own code", re.compile(r"^(__)?io_|^io_uring|^__io_uring")),
    ("epoll's own code", re.compile(r"^(__)?ep_|^do_epoll|^__x64_sys_epoll|^epoll")),
    ("system-call entry and exit", re.compile(
        r"^(do_syscall_64|entry_SYSCALL|syscall_exit|syscall_return|__x64_sys_|"
        r"x64_sys_call|exit_to_user_mode|irqentry_exit|syscall_enter)")),
]


def group(kind, symbol):
    if kind == ".":
        return "user space"
    for name, pattern in GROUPS:
        if pattern.search(symbol):
            return name
    return "the rest of the kernel (TCP, scheduler, memory)"


def main():
    path, per_request = sys.argv[1], float(sys.argv[2])
    shares = {}
    for line in open(path):
        match = re.match(r"\s*([\d.]+)%\s+\[(.)\]\s+(\S+)", line)
        if match:
            name = group(match.group(2), match.group(3))
            shares[name] = shares.get(name, 0.0) + float(match.group(1))
    total = sum(shares.values()) or 1.0
    for name, share in sorted(shares.items(), key=lambda item: -item[1]):
        print(f"  {name:<50} {share / total:>6.1%}  {share / total * per_request:>5.2f} µs per request")


if __name__ == "__main__":
    main()
