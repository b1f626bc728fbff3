#!/bin/bash
# Genius at paper scale as one SLURM job: 4 nodes x 8 GPUs, `genius run` on every GPU.
#
#   sbatch examples/slurm_paper_scale.sh                                   # Llama-3.1-8B, 25K Magpie queries
#   CONFIG=configs/paper_qwen7b_openhermes.yaml sbatch examples/slurm_paper_scale.sh
#   sbatch --nodes 2 examples/slurm_paper_scale.sh                         # any node count
#
# Submit from the project folder, on a filesystem every node sees: RUN_DIR (the run's files),
# HF_HOME (the model and dataset, downloaded once) and the genius cache must be shared. One
# task per node starts `accelerate launch`, which starts one process per GPU: sampling and
# evaluation split their items over all 32 processes (each its own vLLM engine on its GPU,
# `parallel: rank`), training runs DeepSpeed ZeRO-3 over all 32, rank 0 merges and reports.
# When a node dies the job ends (srun --kill-on-bad-exit); submit the same command again and
# every stage resumes from the files in RUN_DIR: finished stages are skipped, sampling and
# evaluation keep every item already written, training restarts from its last checkpoint.
#SBATCH --job-name=genius
#SBATCH --nodes=4
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=64
#SBATCH --time=48:00:00
#SBATCH --output=%x-%j.out
set -euo pipefail

CONFIG=${CONFIG:-configs/paper_llama8b_magpie.yaml}
RUN_DIR=${RUN_DIR:-$PWD/runs/$(basename "$CONFIG" .yaml)}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
export HF_HOME=${HF_HOME:-$PWD/.hf}
export GENIUS_CACHE=${GENIUS_CACHE:-$PWD/.genius-cache}
MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
MASTER_PORT=${MASTER_PORT:-29500}

# Refuse to start what will not fit, before any GPU time is spent (loads no weights).
genius run "$CONFIG" --run-dir "$RUN_DIR" --plan --gpus $((SLURM_NNODES * GPUS_PER_NODE)) \
    --gpus-per-node "$GPUS_PER_NODE" --distributed zero3

# SLURM_NODEID is expanded by each task (single quotes), the rest here.
srun --kill-on-bad-exit=1 bash -c 'accelerate launch --config_file configs/accelerate/deepspeed_zero3.yaml \
    --num_machines '"$SLURM_NNODES"' --num_processes '"$((SLURM_NNODES * GPUS_PER_NODE))"' \
    --machine_rank "$SLURM_NODEID" --main_process_ip '"$MASTER_ADDR"' --main_process_port '"$MASTER_PORT"' \
    -m genius.cli run '"$CONFIG"' --run-dir '"$RUN_DIR"
