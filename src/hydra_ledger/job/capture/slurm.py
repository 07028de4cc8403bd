"""Slurm and submitit facts of the current process, read from the environment (no command is run)."""
from __future__ import annotations

import os
from collections.abc import Mapping

# record field -> environment variable set by Slurm in a job step (sbatch/srun "OUTPUT ENVIRONMENT")
_SLURM_FIELDS = {
    "job_id": "SLURM_JOB_ID",
    "array_job_id": "SLURM_ARRAY_JOB_ID",
    "array_task_id": "SLURM_ARRAY_TASK_ID",
    "array_task_count": "SLURM_ARRAY_TASK_COUNT",
    "job_name": "SLURM_JOB_NAME",
    "partition": "SLURM_JOB_PARTITION",
    "account": "SLURM_JOB_ACCOUNT",
    "qos": "SLURM_JOB_QOS",
    "nodelist": "SLURM_JOB_NODELIST",
    "num_nodes": "SLURM_JOB_NUM_NODES",
    "node": "SLURMD_NODENAME",
    "cpus_per_task": "SLURM_CPUS_PER_TASK",
    "cpus_on_node": "SLURM_CPUS_ON_NODE",
    "mem_per_node_mb": "SLURM_MEM_PER_NODE",
    "mem_per_cpu_mb": "SLURM_MEM_PER_CPU",
    "gpus": "SLURM_GPUS",
    "gpus_on_node": "SLURM_GPUS_ON_NODE",
    "restart_count": "SLURM_RESTART_COUNT",
    "cluster": "SLURM_CLUSTER_NAME",
    "submit_dir": "SLURM_SUBMIT_DIR",
    "submit_host": "SLURM_SUBMIT_HOST",
    "ntasks": "SLURM_NTASKS",
    "procid": "SLURM_PROCID",
    "step_id": "SLURM_STEP_ID",
}
_INT_FIELDS = {"array_task_id", "array_task_count", "num_nodes", "cpus_per_task", "cpus_on_node",
               "mem_per_node_mb", "mem_per_cpu_mb", "gpus_on_node", "restart_count", "ntasks", "procid", "step_id"}


def capture_slurm(environ: Mapping[str, str] | None = None) -> dict[str, object]:
    """Slurm ids, resources and submitit log paths; empty outside Slurm and submitit.

    ``restart_count`` is 0 on a job's first run: Slurm sets ``SLURM_RESTART_COUNT`` only
    after a requeue. ``stdout``/``stderr`` are the task's submitit logs (appended to on requeue).
    """
    env = os.environ if environ is None else environ
    out: dict[str, object] = {}
    for field, var in _SLURM_FIELDS.items():
        raw = env.get(var)
        if raw is None or raw == "":
            continue
        out[field] = _to_int(raw) if field in _INT_FIELDS else raw
    if out and "restart_count" not in out and "job_id" in out:
        out["restart_count"] = 0
    executor = env.get("SUBMITIT_EXECUTOR")
    if executor:
        out["submitit_executor"] = executor
        job_id = submitit_job_id(env)
        if job_id:
            out["submitit_job_id"] = job_id
            folder = env.get("SUBMITIT_FOLDER")
            if folder:
                # submitit's JobPaths: folder with %j -> job id, then <job id>_<task rank>_log.{out,err}
                task = env.get("SLURM_PROCID") or env.get("SUBMITIT_LOCAL_GLOBALID") or "0"
                log_dir = folder.replace("%j", job_id)
                out["submitit_folder"] = log_dir
                out["stdout"] = os.path.join(log_dir, f"{job_id}_{task}_log.out")
                out["stderr"] = os.path.join(log_dir, f"{job_id}_{task}_log.err")
    return out


def submitit_job_id(env: Mapping[str, str]) -> str | None:
    """submitit's job id: ``<array>_<task>`` for array tasks, the raw id otherwise (as submitit names logs)."""
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get("SLURM_JOB_ID") or env.get("SUBMITIT_LOCAL_JOB_ID")


def _to_int(raw: str) -> object:
    try:
        return int(raw)
    except ValueError:
        return raw
