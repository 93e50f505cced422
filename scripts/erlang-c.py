#!/usr/bin/env python3
"""What queueing theory predicts for a pool of c threads, each request holding one for a
fixed time, as the offered rate rises towards the pool's capacity c / service time.

Two models, printed side by side per offered rate:
- M/M/c (Poisson arrivals, exponential service): Erlang C, the probability that an
  arrival finds every thread busy, and from it the mean wait in the queue, in closed form;
- M/D/c (Poisson arrivals, every request taking exactly the service time, as `/sleep`
  does): simulated, first come first served, for the mean wait and the p99 of the whole
  latency (wait + service), the figure `loadgen sweep --arrivals poisson` measures.

Past the capacity neither has a steady state: the queue grows by (rate - capacity)
requests every second, for as long as the load lasts.

    python3 scripts/erlang-c.py                       # v3's pool of 10, /sleep?ms=100
    python3 scripts/erlang-c.py --threads 4 --service-ms 50
"""
import argparse
import heapq
import math
import random

FRACTIONS = [0.25, 0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 1.0, 1.15, 1.3, 2.0]


def erlang_c(c, load):
    """Probability that an arrival waits, for c servers offered `load` = rate x service
    time (in erlangs); load < c. Summed term by term, so no factorial overflows."""
    term, below = 1.0, 1.0  # load^k / k!, for k = 0, summed for k < c
    for k in range(1, c):
        term *= load / k
        below += term
    top = term * load / c / (1 - load / c)  # load^c / c! / (1 - rho)
    return top / (below + top)


def simulate_md_c(c, rate, service, arrivals, seed):
    """Waits of `arrivals` Poisson arrivals at c servers with a fixed service time, first
    come first served: each arrival takes the server that frees first."""
    rng = random.Random(seed)
    free_at = [0.0] * c
    now, waits = 0.0, []
    for _ in range(arrivals):
        now += rng.expovariate(rate)
        start = max(now, heapq.heappop(free_at))
        waits.append(start - now)
        heapq.heappush(free_at, start + service)
    return waits


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(p * len(ordered)) - 1)]


def md_c_knee(c, service, slo, arrivals, seed):
    """The offered rate at which M/D/c's simulated p99 latency reaches `slo`, by
    bisection between nothing and the capacity (p99 rises with the rate)."""
    if service > slo:
        return None
    low, high = 0.0, c / service
    for _ in range(14):
        rate = (low + high) / 2
        p99 = percentile(simulate_md_c(c, rate, service, arrivals, seed), 0.99) + service
        low, high = (rate, high) if p99 <= slo else (low, rate)
    return low


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=10)
    parser.add_argument("--service-ms", type=float, default=100.0)
    parser.add_argument("--arrivals", type=int, default=200_000, help="simulated per rate")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--slo-ms", type=float, default=100.0, help="the p99 the knee keeps")
    args = parser.parse_args()
    c, service = args.threads, args.service_ms / 1000
    capacity = c / service
    threads = "1 thread" if c == 1 else f"{c} threads"
    print(f"c = {threads}, service {args.service_ms:g} ms each: capacity {capacity:g} req/s")
    print(f"{'offered':>8} {'rho':>5} {'P(wait)':>8} {'M/M/c mean wait':>16}"
          f" {'M/D/c mean wait':>16} {'M/D/c p99 latency':>18}")
    for fraction in FRACTIONS:
        rate = fraction * capacity
        if fraction == 1:
            print(f"{rate:8.1f} {fraction:5.2f}  no steady state: with nothing to spare, the"
                  " queue's length wanders without bound")
            continue
        if fraction > 1:
            print(f"{rate:8.1f} {fraction:5.2f}  no steady state: the queue grows by"
                  f" {rate - capacity:g} requests a second")
            continue
        wait_probability = erlang_c(c, rate * service)
        mm_wait = wait_probability / (capacity - rate)  # Erlang C over (c mu - lambda)
        waits = simulate_md_c(c, rate, service, args.arrivals, args.seed)
        md_wait = sum(waits) / len(waits)
        md_p99 = percentile(waits, 0.99) + service
        print(f"{rate:8.1f} {fraction:5.2f} {wait_probability:8.3f} {mm_wait * 1000:13.1f} ms"
              f" {md_wait * 1000:13.1f} ms {md_p99 * 1000:15.1f} ms")
    knee = md_c_knee(c, service, args.slo_ms / 1000, args.arrivals, args.seed)
    if knee is None:
        print(f"M/D/c knee: none, the service time alone is past the {args.slo_ms:g} ms SLO")
    else:
        print(f"M/D/c knee (the rate whose p99 latency is {args.slo_ms:g} ms): about"
              f" {knee:.1f} req/s, {knee / capacity:.2f} of the capacity")


if __name__ == "__main__":
    main()
