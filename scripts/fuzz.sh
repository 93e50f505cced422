#!/usr/bin/env bash
# Runs every coverage-guided fuzz target of fuzz/ (cargo fuzz, libFuzzer) for a given time,
# one after another, and writes a summary: executions, coverage and features, corpus
# size, duration and findings per target, with the command, machine, kernel and commit.
# Exits non-zero on a finding (a crash, a failed assertion, a leak, a timeout, memory
# past the limits), whose input is left in target/fuzz/artifacts/<target>/.
#
#     scripts/fuzz.sh                  # 60 s a target, summary in docs/src/results/fuzz-<date>.txt
#     scripts/fuzz.sh 1200             # 20 minutes a target (the stored run)
#     scripts/fuzz.sh 45 target/fuzz/ci.txt   # CI: the summary outside the book
#     FUZZ_STABLE=1 scripts/fuzz.sh 45 /tmp/f.txt  # the stable path, where nightly is missing
#
# The committed corpus (fuzz/corpus/<target>) seeds each run and is not written to: new
# inputs go to target/fuzz/corpus/<target>, which `cargo fuzz cmin` can fold back in.
# Each input found once is replayed first (fuzz/regressions/<target>/). On the nightly
# toolchain the targets build with AddressSanitizer (which also enforces the per-input
# allocation limit); without nightly, on stable with RUSTC_BOOTSTRAP=1 and no sanitizer,
# which still fuzzes with coverage, and the RSS limit still holds.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

# All in a function, called from one compound command that exits: bash reads both whole
# before running them, so editing this file while a long run is under way does not
# change the run, nor make it read on into the edited text.
main() {
  cd "$root"
  seconds="${1:-60}"
  summary="${2:-docs/src/results/fuzz-$(date -u +%Y-%m-%d).txt}"
  # FUZZ_WORK: where logs, new inputs, findings and builds go (two runs at once need two).
  work="${FUZZ_WORK:-$root/target/fuzz}"
  mkdir -p "$work" "$(dirname "$summary")"

  command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2
  # FUZZ_STABLE=1 takes the stable path even where nightly is installed (to try it).
  if [ "${FUZZ_STABLE:-}" != 1 ] && cargo +nightly --version >/dev/null 2>&1; then
    fuzz=(cargo +nightly fuzz)
    build=(--sanitizer address)
    toolchain="nightly ($(cargo +nightly --version)), AddressSanitizer"
    flavour=nightly
  else
    # The stable compiler takes the few unstable flags cargo-fuzz passes when told it may.
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
    build=(--sanitizer none)
    toolchain="stable with RUSTC_BOOTSTRAP=1 ($(cargo --version)), no sanitizer"
    flavour=stable
  fi
  # The fuzz crate's own target directory, so the stable workspace's build is not disturbed.
  # One per toolchain: each would rebuild everything the other built.
  export CARGO_TARGET_DIR="$work/build-$flavour"
  cd fuzz
  mapfile -t targets < <("${fuzz[@]}" list)
  [ "${#targets[@]}" -ge 3 ] || { echo "expected three fuzz targets or more: ${targets[*]}"; exit 1; }
  "${fuzz[@]}" build "${build[@]}" --release

  # Bounded memory: 2 GiB of RSS in all (ASan's quarantine included), 64 MiB in one
  # allocation (the decoder's largest buffer is a 1 MiB body); 10 s for one input.
  limits=(-rss_limit_mb=2048 -malloc_limit_mb=64 -timeout=10 -max_len=4096 -dict=http.dict
          -print_final_stats=1)
  start=$(date -u +%s)
  commit=$(git rev-parse --short HEAD)
  load_before=$(cut -d' ' -f1-3 /proc/loadavg)
  rows=()
  failed=0
  for target in "${targets[@]}"; do
    log="$work/$target.log"
    mkdir -p "$work/corpus/$target" "$work/artifacts/$target"
    if compgen -G "regressions/$target/*" >/dev/null; then
      echo "== $target: the inputs it once failed on"
      if ! "${fuzz[@]}" run "${build[@]}" --release "$target" regressions/"$target"/* -- \
           "${limits[@]}" -artifact_prefix="$work/artifacts/$target/" >"$log.regressions" 2>&1; then
        tail -40 "$log.regressions"
        rows+=("$(printf '%-14s a regression failed again: %s' "$target" "$log.regressions")")
        failed=1
        continue
      fi
    fi
    echo "== $target: ${seconds} s"
    t0=$(date -u +%s)
    status=0
    nice -n 10 "${fuzz[@]}" run "${build[@]}" --release "$target" \
      "$work/corpus/$target" "corpus/$target" -- "${limits[@]}" -max_total_time="$seconds" \
      -artifact_prefix="$work/artifacts/$target/" >"$log" 2>&1 || status=$?
    took=$(( $(date -u +%s) - t0 ))
    # libFuzzer's last status line and final statistics say what the run did.
    last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
    final() { grep -oP "^stat::$1:\s*\K[0-9]+" "$log" | tail -1 || echo "?"; }
    cov=$(grep -oP 'cov: \K[0-9]+' <<<"$last" || echo "?")
    ft=$(grep -oP 'ft: \K[0-9]+' <<<"$last" || echo "?")
    corp=$(grep -oP 'corp: \K[0-9]+/[0-9]+[a-zA-Z]*' <<<"$last" || echo "?")
    executed=$(final number_of_executed_units)
    if [ "$status" -eq 0 ] && ! [ "${executed:-0}" -gt 0 ] 2>/dev/null; then
      echo "$target: no executions in its log: the target did not run"
      status=1
    fi
    if [ "$status" -ne 0 ]; then
      failed=1
      findings="$(find "$work/artifacts/$target" -type f -newermt "@$t0" | wc -l) (exit $status)"
      grep -E 'panicked|ERROR|SUMMARY' "$log" | head -5 || true
    else
      findings=0
    fi
    rows+=("$(printf '%-14s %6ss %12s %9s %7s %8s %11s %8s  %s' "$target" "$took" \
      "$executed" "$(final average_exec_per_sec)" "$cov" "$ft" "$corp" \
      "$(final peak_rss_mb)" "$findings")")
  done
  load_after=$(cut -d' ' -f1-3 /proc/loadavg)
  cd "$root"

  {
    echo "# scripts/fuzz.sh $*  ($(date -u +%Y-%m-%dT%H:%MZ), at $commit)"
    echo "# machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores," \
         "shared with other work (load average $load_before before, $load_after after)"
    echo "# kernel: $(uname -r); toolchain: $toolchain; $("${fuzz[@]}" --version 2>/dev/null || true)"
    echo "# each target ${seconds} s, one at a time under nice -n 10; ${limits[*]}"
    echo "# wall time $(( $(date -u +%s) - start )) s in all"
    echo
    printf '%-14s %7s %12s %9s %7s %8s %11s %8s  %s\n' target time executions exec/s cov \
      features corpus rss_mb findings
    printf '%s\n' "${rows[@]}"
    echo
    echo "cov: code edges reached (libFuzzer's coverage counters); features: edges and their"
    echo "hit counts and compared values, what libFuzzer steers by; corpus: inputs kept / bytes."
    echo "Executions per second are of a machine shared with other jobs: a lower bound."
  } >"$summary"
  cat "$summary"
  return "$failed"
}

{ main "$@"; exit $?; }
