#!/usr/bin/env bash
# Train every spec in specs/ end to end offline, on embedded data, and print what each reached.
#
#   scripts/try_every_spec.sh [OUTPUT_DIR]      (default: /tmp/zoo-try-every-spec)
#
# Small specs train with their own hyper-parameters on mnist_subset and record their results
# in the zoo's own table, results/zoo.json (then `zoo list --update README.md`); the ImageNet and
# CIFAR-sized ones (AlexNet, VGG, ResNets) run a short smoke training (a few steps at
# their full input size, evaluated on 100 test images): enough to show that they
# train, export and evaluate, not to reach their papers' accuracy on a CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
output=${1:-/tmp/zoo-try-every-spec}
short=(--set train.epochs=1 --set train.steps_per_epoch=3 --set train.batch_size=8
       --set "data.eval_split=test[:100]" --results '')   # a smoke run's accuracy is no result
printf '%-22s %-8s %-10s %s\n' spec seconds exit "final metrics (eval split)"
for spec in specs/*.yaml; do
  name=$(basename "$spec" .yaml)
  case "$name" in
    alexnet|resnet*|vgg*) extra=("${short[@]}") ;;
    *) extra=(--results results/zoo.json) ;;
  esac
  start=$SECONDS
  set +e
  python train.py "$spec" --set data.dataset=mnist_subset --output "$output" --restart \
    "${extra[@]}" > "$output.$name.log" 2>&1
  code=$?
  set -e
  version=$(ls "$output/$name" 2>/dev/null | grep -E '^[0-9]+$' | sort -n | tail -1 || true)
  summary=$( [ -n "$version" ] && tr -d '\n ' < "$output/$name/$version/metrics.json" || echo "-")
  printf '%-22s %-8s %-10s %s\n' "$name" "$((SECONDS - start))" "$code" "$summary"
done
