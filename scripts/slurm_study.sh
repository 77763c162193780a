#!/usr/bin/env bash
# Submit a study to SLURM as independent jobs (docs: README, "Scale-out"):
#   1. one job: every seed's shared cycle 1;
#   2. a job array after it: one task per chain (SEED/PARADIGM/ARM), `run --only CHAIN`;
#   3. one job after the array: `run`, which finds every stage done, writes metrics.jsonl and the report.
# Every stage is idempotent and resumable, so a task that is preempted, requeued or resubmitted
# continues where it stopped. The run directory must be on a file system every node sees.
#
#   scripts/slurm_study.sh configs/digits.yaml runs/digits
#   SBATCH_ARGS="--partition=gpu --gres=gpu:1 --time=04:00:00" scripts/slurm_study.sh configs/cifar10_small.yaml
#
# What a cluster user edits: SBATCH_ARGS (partition, account, time, GPUs, CPUs per task) and, when the
# package is not on the nodes' PATH, CD (e.g. CD="/path/to/.venv/bin/collapse-diffusion").
set -euo pipefail
CONFIG=${1:?usage: scripts/slurm_study.sh CONFIG.yaml [RUN_DIR]}
RUN=${2:-runs/$(basename "$CONFIG" .yaml)}
CD=${CD:-collapse-diffusion}
SBATCH_ARGS=${SBATCH_ARGS:-}

$CD init "$CONFIG" --run-dir "$RUN" --wait         # checks the config; refuses one that differs from RUN's
SAVED="$RUN/config.yaml"                           # every job reads the resolved config, not the editable file
mkdir -p "$RUN/slurm"
$CD chains "$SAVED" > "$RUN/slurm/chains.txt"       # task i of the array runs line i+1
N=$(wc -l < "$RUN/slurm/chains.txt")
submit() { sbatch --parsable --requeue $SBATCH_ARGS "$@"; }

first=$(submit --job-name=cd-cycle1 --output="$RUN/slurm/cycle1-%j.out" \
  --wrap="$CD run '$SAVED' --run-dir '$RUN' --only shared --wait")
array=$(submit --job-name=cd-chain --array="0-$((N - 1))" --dependency="afterok:$first" \
  --output="$RUN/slurm/chain-%A_%a.out" \
  --wrap="$CD run '$SAVED' --run-dir '$RUN' --wait --only \$(sed -n \$((SLURM_ARRAY_TASK_ID + 1))p '$RUN/slurm/chains.txt')")
merge=$(submit --job-name=cd-merge --dependency="afterok:$array" --output="$RUN/slurm/merge-%j.out" \
  --wrap="$CD run '$SAVED' --run-dir '$RUN' --wait")
echo "submitted: cycle 1 job $first, chain array $array ($N tasks), merge job $merge -> $RUN/metrics.jsonl"
