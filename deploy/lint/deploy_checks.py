"""Checks on deploy/ that no off-the-shelf linter makes, for scripts/lint-deploy.

    deploy_checks.py k8s-config CONFIGMAP OUT      # write the ConfigMap's sesroute.toml to OUT
    deploy_checks.py render-cfn TEMPLATE OUTDIR    # the template's config and IAM policies, rendered
    deploy_checks.py grants CONFIG POLICY          # POLICY grants exactly what CONFIG needs
    deploy_checks.py k8s DIR                       # references between the manifests hold
    deploy_checks.py cfn TEMPLATE                  # the ECS task fits sesroute's shutdown and health
    deploy_checks.py same-policy A B               # two IAM policy documents are the same
    deploy_checks.py parliament POLICY...          # parliament's audit, every severity

Each check prints one line per finding and exits 1 when there is any. Runs
in .venv-deploy (PyYAML, cfn-lint's template decoder); Python 3.11+ (tomllib).
"""

import json
import re
import sys
import tomllib
from pathlib import Path

import yaml
from cfnlint.decode import decode_str

# Values the template is rendered with: the defaults of its parameters, plus
# an archive bucket so that the conditional S3 statement is rendered and linted.
PSEUDO = {"AWS::Region": "eu-west-1", "AWS::AccountId": "111122223333", "AWS::Partition": "aws"}
PARAMETER_OVERRIDES = {"ArchiveBucketName": "example-ses-archive", "Image": "sesroute:0.1.0", "ClusterName": "default"}

# What sesroute calls, per config element (batch calls need the same actions).
SOURCE_ACTIONS = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"}
SINK_ACTIONS = {"sns": ("topic_arn", {"sns:Publish"}), "sqs": ("queue_url", {"sqs:SendMessage"})}
# Granted ahead of the S3 archive sink: allowed without a config that uses it.
AHEAD_OF_CONFIG = {"s3:PutObject"}

findings = []


def finding(where, message):
    findings.append(f"{where}: {message}")


def done():
    for line in findings:
        print(line)
    sys.exit(1 if findings else 0)


# --- Kubernetes ------------------------------------------------------------------


def documents(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def k8s_config_text(configmap_path):
    for doc in documents(configmap_path):
        if doc.get("kind") == "ConfigMap" and "sesroute.toml" in doc.get("data", {}):
            return doc["data"]["sesroute.toml"]
    raise SystemExit(f"{configmap_path}: no ConfigMap with a sesroute.toml key")


def check_k8s(directory):
    directory = Path(directory)
    kustomization = documents(directory / "kustomization.yaml")[0]
    listed = set(kustomization.get("resources", []))
    present = {p.name for p in directory.glob("*.yaml")} - {"kustomization.yaml"}
    for name in sorted(present - listed):
        finding("kustomization.yaml", f"{name} is not listed in resources")
    for name in sorted(listed - present):
        finding("kustomization.yaml", f"lists {name}, which does not exist")

    by_kind = {}
    for name in sorted(present):
        for doc in documents(directory / name):
            by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = (name, doc)

    config = tomllib.loads(k8s_config_text(directory / "configmap.yaml"))
    listen_port = int(config.get("server", {}).get("listen", "0.0.0.0:9090").rsplit(":", 1)[1])
    grace = config.get("runtime", {}).get("shutdown_grace_secs", 25)
    region = config.get("aws", {}).get("region")
    queues = {s["queue_url"] for s in config.get("sources", [])}

    for dname, (file, deployment) in by_kind.get("Deployment", {}).items():
        spec = deployment["spec"]["template"]["spec"]
        where = f"{file} Deployment/{dname}"
        if spec.get("serviceAccountName") not in by_kind.get("ServiceAccount", {}):
            finding(where, f"serviceAccountName {spec.get('serviceAccountName')!r} is not defined here")
        for volume in spec.get("volumes", []):
            cm = volume.get("configMap", {}).get("name")
            if cm and cm not in by_kind.get("ConfigMap", {}):
                finding(where, f"volume {volume['name']} uses ConfigMap {cm!r}, not defined here")
        if spec.get("terminationGracePeriodSeconds", 30) < grace + 5:
            finding(where, f"terminationGracePeriodSeconds is under shutdown_grace_secs ({grace}) + 5")
        for container in spec["containers"]:
            ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
            if listen_port not in ports.values():
                finding(where, f"no containerPort {listen_port} ([server] listen in the ConfigMap)")
            for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
                get = container.get(probe, {}).get("httpGet", {})
                if get.get("path") != path or ports.get(get.get("port"), get.get("port")) != listen_port:
                    finding(where, f"{probe} is not GET {path} on port {listen_port}")
            mounts = {m["mountPath"]: m for m in container.get("volumeMounts", [])}
            if not mounts.get("/etc/sesroute", {}).get("readOnly"):
                finding(where, "the config is not mounted read-only at /etc/sesroute")
            if "/var/lib/sesroute" not in mounts:
                finding(where, "nothing is mounted at /var/lib/sesroute (file sinks need it writable)")

    for sname, (file, service) in by_kind.get("Service", {}).items():
        for port in service["spec"]["ports"]:
            if port.get("targetPort") not in ("http-metrics", listen_port):
                finding(f"{file} Service/{sname}", f"targetPort {port.get('targetPort')!r} is not the metrics port")

    for sname, (file, account) in by_kind.get("ServiceAccount", {}).items():
        role = account["metadata"].get("annotations", {}).get("eks.amazonaws.com/role-arn", "")
        if not re.fullmatch(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+", role):
            finding(f"{file} ServiceAccount/{sname}", f"eks.amazonaws.com/role-arn {role!r} is not a role ARN")

    # KEDA's kinds have no schema here, so check what matters by hand.
    auths = by_kind.get("TriggerAuthentication", {})
    deployments = by_kind.get("Deployment", {})
    for oname, (file, scaled) in by_kind.get("ScaledObject", {}).items():
        where = f"{file} ScaledObject/{oname}"
        spec = scaled["spec"]
        if spec.get("scaleTargetRef", {}).get("name") not in deployments:
            finding(where, "scaleTargetRef does not name a Deployment defined here")
        if spec.get("minReplicaCount", 0) < 1:
            finding(where, "minReplicaCount under 1 takes /metrics and /readyz away when idle")
        scaled_queues = set()
        for trigger in spec.get("triggers", []):
            meta = trigger.get("metadata", {})
            if trigger.get("type") != "aws-sqs-queue":
                finding(where, f"unexpected trigger type {trigger.get('type')!r}")
                continue
            scaled_queues.add(meta.get("queueURL"))
            if meta.get("awsRegion") != region:
                finding(where, f"trigger awsRegion {meta.get('awsRegion')!r} is not the config's {region!r}")
            if not str(meta.get("queueLength", "")).isdigit():
                finding(where, "trigger queueLength must be a whole number in a string")
            auth = trigger.get("authenticationRef", {}).get("name")
            if auth not in auths:
                finding(where, f"authenticationRef {auth!r} is not defined here")
        if scaled_queues != queues:
            finding(where, f"triggers watch {sorted(scaled_queues)}, the config polls {sorted(queues)}")
    for aname, (file, auth) in auths.items():
        identity = auth["spec"].get("podIdentity", {})
        if identity.get("provider") != "aws" or identity.get("identityOwner") != "workload":
            finding(
                f"{file} TriggerAuthentication/{aname}", "expected podIdentity provider aws, identityOwner workload"
            )


# --- CloudFormation --------------------------------------------------------------------


def load_template(path):
    template, matches = decode_str(Path(path).read_text(encoding="utf-8"))
    if matches:
        raise SystemExit(f"{path}: cannot be parsed: {matches}")
    return template


class Renderer:
    """Evaluates the intrinsic functions the template uses, with fixed parameters."""

    def __init__(self, template):
        self.template = template
        self.values = dict(PSEUDO)
        for name, parameter in template.get("Parameters", {}).items():
            value = PARAMETER_OVERRIDES.get(name, parameter.get("Default", ""))
            self.values[name] = ",".join(value) if isinstance(value, list) else str(value)
        self.conditions = {name: self.render(c) for name, c in template.get("Conditions", {}).items()}

    def resource_name(self, logical, key):
        return self.render(self.template["Resources"][logical]["Properties"][key])

    def ref(self, name):
        if name in self.values:
            return self.values[name]
        kind = self.template["Resources"][name]["Type"]
        region, account = PSEUDO["AWS::Region"], PSEUDO["AWS::AccountId"]
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{region}.amazonaws.com/{account}/{self.resource_name(name, 'QueueName')}"
        if kind == "AWS::SNS::Topic":
            return f"arn:aws:sns:{region}:{account}:{self.resource_name(name, 'TopicName')}"
        if kind in ("AWS::SSM::Parameter", "AWS::Logs::LogGroup"):
            return self.resource_name(name, "Name" if kind == "AWS::SSM::Parameter" else "LogGroupName")
        return name

    def get_att(self, name, attribute):
        kind = self.template["Resources"][name]["Type"]
        region, account = PSEUDO["AWS::Region"], PSEUDO["AWS::AccountId"]
        if kind == "AWS::SQS::Queue" and attribute == "Arn":
            return f"arn:aws:sqs:{region}:{account}:{self.resource_name(name, 'QueueName')}"
        if kind == "AWS::IAM::Role" and attribute == "Arn":
            return f"arn:aws:iam::{account}:role/{self.resource_name(name, 'RoleName')}"
        raise SystemExit(f"render-cfn: GetAtt {name}.{attribute} is not supported; teach deploy_checks.py")

    def render(self, node):
        if isinstance(node, list):
            return [v for v in (self.render(n) for n in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return NO_VALUE if arg == "AWS::NoValue" else self.ref(arg)
            if key == "Fn::GetAtt":
                name, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(name, attribute)
            if key == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self.render(arg[1]))
                return re.sub(r"\$\{([^}!]+)\}", lambda m: self.sub_var(m.group(1), extra), text)
            if key == "Fn::If":
                name, yes, no = arg
                return self.render(yes if self.conditions[name] else no)
            if key == "Fn::Equals":
                a, b = self.render(arg)
                return a == b
            if key == "Fn::Not":
                return not self.render(arg[0])
            if key == "Fn::Join":
                return arg[0].join(self.render(arg[1]))
        return {k: v for k, v in ((k, self.render(v)) for k, v in node.items()) if v is not NO_VALUE}

    def sub_var(self, name, extra):
        if name in extra:
            return str(extra[name])
        if "." in name:
            return self.get_att(*name.split(".", 1))
        return self.ref(name)


NO_VALUE = object()


def render_cfn(template_path, outdir):
    template = load_template(template_path)
    renderer = Renderer(template)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    for logical, resource in template["Resources"].items():
        if resource["Type"] == "AWS::SSM::Parameter":
            (outdir / "sesroute.toml").write_text(renderer.render(resource["Properties"]["Value"]), encoding="utf-8")
        if resource["Type"] == "AWS::IAM::Role":
            for policy in resource["Properties"].get("Policies", []):
                document = renderer.render(policy["PolicyDocument"])
                (outdir / f"{logical}.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    for written in sorted(outdir.iterdir()):
        print(written)


def check_cfn(template_path):
    template = load_template(template_path)
    renderer = Renderer(template)
    config_text = next(
        renderer.render(r["Properties"]["Value"])
        for r in template["Resources"].values()
        if r["Type"] == "AWS::SSM::Parameter"
    )
    grace = tomllib.loads(config_text).get("runtime", {}).get("shutdown_grace_secs", 25)
    for logical, resource in template["Resources"].items():
        if resource["Type"] != "AWS::ECS::TaskDefinition":
            continue
        for container in resource["Properties"]["ContainerDefinitions"]:
            if container.get("Essential", True) is False:
                continue
            where = f"{template_path} {logical}.{container['Name']}"
            if container.get("StopTimeout", 30) < grace + 5:
                finding(where, f"StopTimeout is under shutdown_grace_secs ({grace}) + 5")
            if container.get("HealthCheck", {}).get("Command") != ["CMD", "/usr/local/bin/sesroute", "health"]:
                finding(where, 'HealthCheck.Command is not ["CMD", "/usr/local/bin/sesroute", "health"]')
            if container.get("ReadonlyRootFilesystem") is not True:
                finding(where, "ReadonlyRootFilesystem is not true")
            mounts = {m["ContainerPath"]: m for m in container.get("MountPoints", [])}
            if not mounts.get("/etc/sesroute", {}).get("ReadOnly"):
                finding(where, "the config volume is not mounted read-only at /etc/sesroute")
            if "/var/lib/sesroute" not in mounts:
                finding(where, "nothing is mounted at /var/lib/sesroute (file sinks need it writable)")


# --- IAM against the config --------------------------------------------------------------


def queue_arn(url):
    m = re.fullmatch(r"https://sqs\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/(\d{12})/([\w-]+(?:\.fifo)?)", url)
    if not m:
        raise SystemExit(f"grants: cannot make an ARN of queue URL {url!r}")
    region, account, name = m.groups()
    return f"arn:aws:sqs:{region}:{account}:{name}"


def needed(config):
    pairs = set()
    for source in config.get("sources", []):
        pairs |= {(action, queue_arn(source["queue_url"])) for action in SOURCE_ACTIONS}
    for sink in config.get("sinks", {}).values():
        if sink["type"] in SINK_ACTIONS:
            key, actions = SINK_ACTIONS[sink["type"]]
            target = sink[key] if key == "topic_arn" else queue_arn(sink[key])
            pairs |= {(action, target) for action in actions}
    return pairs


def granted(policy, where):
    pairs = set()
    statements = policy["Statement"]
    for statement in statements if isinstance(statements, list) else [statements]:
        if statement.get("Effect") != "Allow":
            continue
        for key in ("NotAction", "NotResource", "Condition"):
            if key in statement:
                finding(where, f"statement {statement.get('Sid', '?')} uses {key}; keep the policy plain")
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        pairs |= {(a, r) for a in actions for r in resources}
    return pairs


def check_grants(config_path, policy_path):
    config = tomllib.loads(Path(config_path).read_text(encoding="utf-8"))
    policy = json.loads(Path(policy_path).read_text(encoding="utf-8"))
    need, have = needed(config), granted(policy, policy_path)
    for action, resource in sorted(need - have):
        finding(policy_path, f"{config_path} needs {action} on {resource}, which is not granted")
    for action, resource in sorted(have - need):
        if action not in AHEAD_OF_CONFIG:
            finding(policy_path, f"grants {action} on {resource}, which {config_path} does not use")
        elif "*" in resource.split(":::", 1)[-1].split("/", 1)[0]:
            finding(policy_path, f"{action} on {resource}: name the bucket, only the key may have *")


def same_policy(a, b):
    def statements(path):
        policy = json.loads(Path(path).read_text(encoding="utf-8"))
        return sorted(json.dumps(s, sort_keys=True) for s in policy["Statement"])

    if statements(a) != statements(b):
        finding(b, f"differs from {a}: keep the standalone policy and the template's task role in step")


# parliament findings that are accepted, each for one file and one action,
# with the reason. (parliament's own ignore_locations setting matches nothing
# in 1.6.4 when read from a config file.)
PARLIAMENT_ACCEPTED = [
    # ECS cannot pull from ECR without an authorization token, and the action
    # has no resource-level permissions. Only the execution role has it,
    # never the daemon's task role.
    ("ExecutionRole.json", "CREDENTIALS_EXPOSURE", ["ecr:getauthorizationtoken"]),
]


def run_parliament(*paths):
    """parliament as a library, at every severity: its 1.6.4 command line also
    writes its arguments and every policy it reads to /tmp/parliament.log."""
    import parliament
    from parliament.cli import is_finding_filtered

    community = Path(parliament.__file__).parent / "community_auditors" / "config_override.yaml"
    parliament.override_config(community)
    for path in paths:
        policy = parliament.analyze_policy_string(
            Path(path).read_text(encoding="utf-8"), path, include_community_auditors=True, config=parliament.config
        )
        for result in policy.findings:
            result = parliament.enhance_finding(result)
            accepted = (Path(path).name, result.issue, result.location.get("actions"))
            if is_finding_filtered(result, "INFO") or list(accepted) in map(list, PARLIAMENT_ACCEPTED):
                continue
            where = {k: v for k, v in result.location.items() if k != "filepath"}
            finding(path, f"{result.severity} {result.issue}: {result.title} {result.detail} {where}".rstrip())


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    command, args = argv[1], argv[2:]
    if command == "k8s-config" and len(args) == 2:
        Path(args[1]).write_text(k8s_config_text(args[0]), encoding="utf-8")
    elif command == "render-cfn" and len(args) == 2:
        render_cfn(*args)
    elif command == "grants" and len(args) == 2:
        check_grants(*args)
    elif command == "k8s" and len(args) == 1:
        check_k8s(*args)
    elif command == "cfn" and len(args) == 1:
        check_cfn(*args)
    elif command == "same-policy" and len(args) == 2:
        same_policy(*args)
    elif command == "parliament" and args:
        run_parliament(*args)
    else:
        raise SystemExit(__doc__)
    done()


if __name__ == "__main__":
    main(sys.argv)
