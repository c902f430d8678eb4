"""Scaling decisions: the Kubernetes HPA formula plus a linear-trend prediction."""
import math
from dataclasses import dataclass

from kubernetes.utils import parse_quantity


@dataclass
class Policy:
    deployment: str
    cpu_request: str  # per pod, a Kubernetes quantity such as "250m"
    target_utilization: float  # 0.0-1.0
    min_replicas: int = 1
    max_replicas: int = 10


def trend(samples):
    """Least-squares slope per sample of a list of numbers (0 for fewer than two)."""
    n = len(samples)
    if n < 2:
        return 0.0
    mx, my = (n - 1) / 2, sum(samples) / n
    return sum((i - mx) * (y - my) for i, y in enumerate(samples)) / sum((i - mx) ** 2 for i in range(n))


def decide(policy: Policy, replicas: int, usage: list, horizon: int = 3) -> dict:
    """usage: recent total CPU usage of the deployment as quantities ("1200m", "1.5")."""
    cores = [float(parse_quantity(u)) for u in usage]
    per_pod_request = float(parse_quantity(policy.cpu_request))
    current = cores[-1] / (replicas * per_pod_request)
    predicted_cores = max(0.0, cores[-1] + trend(cores) * horizon)
    predicted = predicted_cores / (replicas * per_pod_request)
    # HPA: desired = ceil(current * currentUtilization / targetUtilization), on the larger of now and soon.
    desired = math.ceil(replicas * max(current, predicted) / policy.target_utilization)
    desired = max(policy.min_replicas, min(policy.max_replicas, desired))
    return {
        "deployment": policy.deployment,
        "replicas": replicas,
        "utilization": round(current, 3),
        "predicted_utilization": round(predicted, 3),
        "desired": desired,
        "action": "scale-up" if desired > replicas else "scale-down" if desired < replicas else "hold",
    }
