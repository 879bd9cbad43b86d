"""The `remediation` command: validate, plan, run and document the runbooks.

    remediation validate PATH...           check runbook files or directories; every problem at once
    remediation plan RUNBOOK               what a run would do, templates resolved; executes nothing
    remediation run RUNBOOK                run it: --step ID, --from ID, --yes, --param k=v, --profile FILE,
                                           --output text|json (live per-step progress on a terminal)
    remediation docs DIR --out DIR         render every runbook as Markdown (plus an index)
    remediation actions                    list the registered actions and their parameters
    remediation runs                       recent runs, newest first: the cluster's records (--namespace,
                                           --kubeconfig, --context) or, without those, the local ones
    remediation resume RUN                 a new Job that continues failed run RUN from its failed step
    remediation serve                      the alert receiver: Alertmanager webhooks -> remediation Jobs
                                           (its own options: `remediation serve --help`)

RUNBOOK is a name (looked up as <name>.yaml in --runbooks-dir, default runbooks/) or a path.

Exit codes:
    0  success
    1  the run failed (a step failed, or the run was aborted or timed out)
    2  invalid input: runbook, profile, --param, unknown step, or command-line usage
    3  the run escalated (its escalation steps ran)
    4  refused: a guard (cooldown, budget, lock) said not now, or an approval was denied
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from remediation.actions.registry import ActionRegistry, load_all
from remediation.errors import Problem, RemediationError, RunbookInvalid
from remediation.schemas import suggest

if TYPE_CHECKING:
    from remediation.records_cluster import ConfigMapRecordStore

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_ESCALATED, EXIT_REFUSED = 0, 1, 2, 3, 4
EXIT_INTERRUPTED = 130

EPILOG = """exit codes:
  0  success
  1  the run failed (a step failed, or the run was aborted or timed out)
  2  invalid input (runbook, profile, --param, unknown step, usage)
  3  the run escalated (its escalation steps ran)
  4  refused by a guard (cooldown, budget, lock) or an approval was denied"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="remediation",
        description="Validate, plan, run and document the operations runbooks.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = sub.add_parser(
        "validate",
        help="check runbook files or directories",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    validate.add_argument("paths", nargs="+", metavar="PATH")
    validate.add_argument("--output", choices=("text", "json"), default="text")

    for name, help_text in (
        ("plan", "show what a run would do; executes nothing"),
        ("run", "run a runbook, step by step or whole"),
    ):
        cmd = sub.add_parser(
            name, help=help_text, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        cmd.add_argument("runbook", metavar="RUNBOOK", help="a runbook name (in --runbooks-dir) or a path")
        cmd.add_argument(
            "--runbooks-dir", default="runbooks", help="where names are looked up (default: runbooks/)"
        )
        cmd.add_argument(
            "--param",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="set a parameter (typed: integers, booleans, lists as a,b or JSON)",
        )
        cmd.add_argument(
            "--profile",
            metavar="FILE",
            help="connection settings (schemas/profile.schema.json; default $REMEDIATION_PROFILE)",
        )
        cmd.add_argument("--output", choices=("text", "json"), default="text")
    run = sub.choices["run"]
    which = run.add_mutually_exclusive_group()
    which.add_argument("--step", metavar="ID", help="run only this step")
    which.add_argument(
        "--from",
        dest="from_step",
        metavar="ID",
        help="resume at this step (earlier outputs come from the latest record of this runbook)",
    )
    run.add_argument("--resume-run", metavar="RUN_ID", help="with --from: take earlier outputs from this run")
    run.add_argument("--yes", action="store_true", help="approve every manual approval (non-interactive use)")
    run.add_argument(
        "--state-dir",
        help="run records, audit log and guard state (default .state/ or $REMEDIATION_STATE_DIR)",
    )
    run.add_argument(
        "--trigger",
        metavar="FILE",
        help="JSON {labels: {...}, annotations: {...}} of the alert (default: $REMEDIATION_TRIGGER)",
    )
    run.add_argument(
        "--escalate-only",
        action="store_true",
        help="run only the escalation steps (reason from $REMEDIATION_ESCALATION_REASON)",
    )

    docs = sub.add_parser("docs", help="render runbooks as Markdown")
    docs.add_argument("paths", nargs="+", metavar="PATH")
    docs.add_argument("--out", default="docs/runbooks", help="output directory (default docs/runbooks)")

    actions = sub.add_parser("actions", help="list the registered actions and their parameters")
    actions.add_argument("--output", choices=("text", "json"), default="text")

    runs = sub.add_parser(
        "runs",
        help="list recent runs and their outcome (cluster records with --namespace/--kubeconfig/--context)",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _cluster_options(runs)
    runs.add_argument("--runbook", metavar="NAME", help="only runs of this runbook")
    runs.add_argument("--limit", type=_positive, default=20, metavar="N", help="at most N runs (default 20)")
    runs.add_argument("--output", choices=("table", "json"), default="table")
    runs.add_argument("--state-dir", help="local records, without a cluster option (default .state/)")

    resume = sub.add_parser(
        "resume",
        help="continue a failed run from its failed step, as a new Job",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    resume.add_argument("run_id", metavar="RUN", help="the run's id (see `remediation runs`)")
    _cluster_options(resume)
    resume.add_argument(
        "--from", dest="from_step", metavar="ID", help="continue here instead of the failed step"
    )
    resume.add_argument("--yes", action="store_true", help="create the Job without asking")

    # Listed here for --help only: main() hands `serve` and everything after it to the receiver's own parser.
    sub.add_parser("serve", help="run the alert receiver (options: remediation serve --help)", add_help=False)
    return parser


def _cluster_options(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--namespace",
        metavar="NS",
        help="where the run records are (default $REMEDIATION_NAMESPACE, else shorts)",
    )
    cmd.add_argument(
        "--kubeconfig", metavar="PATH", help="default: in-cluster in a pod, else $KUBECONFIG/~/.kube"
    )
    cmd.add_argument("--context", metavar="NAME", help="a context of the kubeconfig")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, not {text!r}")
    return value


def main(argv: Sequence[str] | None = None, *, registry: ActionRegistry | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        from remediation.receiver.server import serve_main  # the receiver's imports only when serving

        return serve_main(argv[1:])
    args = _parser().parse_args(argv)
    try:
        reg = registry if registry is not None else load_all()
        return int(_COMMANDS[args.command](args, reg))
    except RunbookInvalid as err:
        _print_problems(err.problems, getattr(args, "output", "text"))
        return EXIT_INVALID
    except RemediationError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_INVALID if _is_bad_input(err) else EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_FAILED
    except OSError as err:  # an unwritable state or output directory, a full disk: say which file
        print(f"error: {err.filename or ''}: {err.strerror or err}", file=sys.stderr)
        return EXIT_FAILED


def _is_bad_input(err: RemediationError) -> bool:
    """Errors that a changed command line fixes (an unknown run, a run that cannot be resumed, ...)."""
    from remediation.records_cluster import ClusterConfigError
    from remediation.runs import NotResumable

    return isinstance(err, NotResumable | ClusterConfigError)


def _print_problems(problems: list[Problem], output: str) -> None:
    if output == "json":
        print(
            json.dumps(
                {"valid": False, "problems": [p.__dict__ for p in problems]}, ensure_ascii=False, indent=2
            )
        )
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    print(f"{len(problems)} problem(s)", file=sys.stderr)


def _validate(args: argparse.Namespace, registry: ActionRegistry) -> int:
    from remediation.loader import load_many

    runbooks = load_many(args.paths, registry)
    if args.output == "json":
        print(json.dumps({"valid": True, "runbooks": sorted(r.name for r in runbooks)}, indent=2))
    else:
        for runbook in sorted(runbooks, key=lambda r: r.name):
            print(f"ok  {runbook.file}  ({runbook.name}, {len(runbook.steps)} steps)")
        print(f"{len(runbooks)} runbook(s) valid")
    return EXIT_OK


def find_runbook(spec: str, runbooks_dir: str) -> Path:
    """A path as given, or <runbooks_dir>/<spec>.yaml; RunbookInvalid with did-you-mean otherwise."""
    path = Path(spec)
    if path.suffix in (".yaml", ".yml") or "/" in spec or path.is_file():
        if path.is_file():
            return path
        raise RunbookInvalid(
            [Problem(spec, "", "no such runbook file", None, "give a runbook name or a path")]
        )
    directory = Path(runbooks_dir)
    for suffix in (".yaml", ".yml"):
        candidate = directory / f"{spec}{suffix}"
        if candidate.is_file():
            return candidate
    names = [p.stem for p in directory.glob("*.y*ml")] if directory.is_dir() else []
    hint = suggest(spec, names, "runbooks") if names else f"{directory}/ has no runbooks; pass --runbooks-dir"
    raise RunbookInvalid([Problem(str(directory), "", f"no runbook named {spec!r}", None, hint)])


def _inputs(args: argparse.Namespace, registry: ActionRegistry) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    from remediation.inputs import load_profile, parse_param_args, resolve_params
    from remediation.loader import load_file

    runbook = load_file(find_runbook(args.runbook, args.runbooks_dir), registry)
    problems: list[Problem] = []
    profile: dict[str, Any] = {}
    params: dict[str, Any] = {}
    try:
        profile = load_profile(args.profile)
    except RunbookInvalid as err:
        problems.extend(err.problems)
    try:
        params = resolve_params(runbook, parse_param_args(runbook, args.param))
    except RunbookInvalid as err:
        problems.extend(err.problems)
    if problems:
        raise RunbookInvalid(problems)
    return runbook, params, profile


def _plan(args: argparse.Namespace, registry: ActionRegistry) -> int:
    from remediation.plan import make_plan, plan_json, plan_text

    runbook, params, profile = _inputs(args, registry)
    plan = make_plan(runbook, params, profile, registry)
    print(
        plan_json(plan) if args.output == "json" else plan_text(plan),
        end="" if args.output == "text" else "\n",
    )
    return EXIT_OK


def _load_trigger(path: str | None) -> dict[str, Any]:
    """The alert that started the run: --trigger FILE, else $REMEDIATION_TRIGGER (set by the receiver)."""
    if path is None and not os.environ.get("REMEDIATION_TRIGGER"):
        return {}
    source = path or "$REMEDIATION_TRIGGER"
    try:
        if path is None:
            value = json.loads(os.environ["REMEDIATION_TRIGGER"])
        else:
            value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise RunbookInvalid(
            [
                Problem(
                    source,
                    "",
                    f"cannot read the trigger: {err}",
                    None,
                    'write JSON like {"labels": {"service": "api"}}',
                )
            ]
        ) from None
    if not isinstance(value, dict) or not all(
        isinstance(value.get(k, {}), dict) for k in ("labels", "annotations")
    ):
        raise RunbookInvalid(
            [Problem(source, "", "a trigger is an object with `labels` and `annotations` objects", None)]
        )
    return value


def _ask(prompt: str) -> bool:
    try:
        answer = input(f"\n{prompt} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def _run(args: argparse.Namespace, registry: ActionRegistry) -> int:
    from remediation.executor import Executor, NullReporter
    from remediation.progress import TextReporter, result_json
    from remediation.records import FileRecordStore, RecordStore, state_dir, store_from_env

    runbook, params, profile = _inputs(args, registry)
    trigger = _load_trigger(args.trigger)
    state = state_dir(args.state_dir)
    # Checked before anything runs: a bad $REMEDIATION_RECORDS is an input error, not a failed run.
    cluster_store = store_from_env(_connection(profile))
    previous: dict[str, Any] = {}
    if args.from_step:
        store: RecordStore = cluster_store or FileRecordStore(state)
        record = store.get(args.resume_run) if args.resume_run else store.latest(runbook.name)
        if record is None and args.resume_run:
            raise RunbookInvalid(
                [
                    Problem(
                        "--resume-run",
                        args.resume_run,
                        "no such run record",
                        None,
                        f"records are in {store.where()}",
                    )
                ]
            )
        for step in (record or {}).get("steps", []):
            if isinstance(step, dict) and "id" in step:
                previous[step["id"]] = {
                    "output": step.get("output", {}),
                    "outcome": step.get("outcome"),
                    "error": step.get("error"),
                }
    reporter = TextReporter(sys.stdout) if args.output == "text" else NullReporter()
    interactive = sys.stdin.isatty() and not args.yes
    executor = Executor(
        registry,
        state=state,
        reporter=reporter,
        assume_yes=args.yes,
        prompt=_ask if interactive else None,
        records=cluster_store,
    )
    result = asyncio.run(
        executor.run(
            runbook,
            params,
            profile,
            trigger=trigger,
            start_at=args.from_step,
            only_step=args.step,
            previous=previous,
            escalate_only=_escalation_reason(args),
        )
    )
    if args.output == "json":
        print(result_json(result))
    return result.exit_code


def _connection(settings: Any) -> dict[str, Any]:
    """The Kubernetes connection of a profile or of the command line (kubeconfig, kube_context)."""
    return {key: settings[key] for key in ("kubeconfig", "kube_context") if settings.get(key)}


def _cluster_store(args: argparse.Namespace) -> ConfigMapRecordStore:
    """The ConfigMap record store the cluster options (and $REMEDIATION_NAMESPACE) point at."""
    from remediation.records import NAMESPACE_ENV
    from remediation.records_cluster import ConfigMapRecordStore

    if args.kubeconfig and not Path(args.kubeconfig).is_file():
        raise RunbookInvalid(
            [Problem("--kubeconfig", args.kubeconfig, "no such file", None, "give the path of a kubeconfig")]
        )
    namespace = args.namespace or os.environ.get(NAMESPACE_ENV) or "shorts"
    connection = _connection({"kubeconfig": args.kubeconfig, "kube_context": args.context})
    return ConfigMapRecordStore(
        namespace, connection, hint="pass --kubeconfig (and --context), or set $KUBECONFIG"
    )


def _runs(args: argparse.Namespace, registry: ActionRegistry) -> int:
    from remediation.records import RECORDS_ENV, FileRecordStore, state_dir
    from remediation.runs import as_json, summary, table

    in_cluster = (
        args.namespace or args.kubeconfig or args.context or os.environ.get(RECORDS_ENV) == "configmaps"
    )
    store = _cluster_store(args) if in_cluster else FileRecordStore(state_dir(args.state_dir))
    rows = [summary(record) for record in store.recent(args.limit, args.runbook)]
    if args.output == "json":
        print(as_json(rows))
        return EXIT_OK
    if not rows:
        which = f" of runbook {args.runbook}" if args.runbook else ""
        print(f"no runs{which} recorded in {store.where()}", file=sys.stderr)
        return EXIT_OK
    print(table(rows), end="")
    return EXIT_OK


def _resume(args: argparse.Namespace, registry: ActionRegistry) -> int:
    from remediation.resume_cluster import resume

    store = _cluster_store(args)
    return resume(store, args.run_id, args.from_step, confirm=_confirm(args.yes))


def _confirm(assume_yes: bool) -> Any:
    """Asks on a terminal; without one, only --yes goes ahead."""
    from remediation.runs import NotResumable

    def confirm(prompt: str) -> bool:
        if assume_yes:
            return True
        if not sys.stdin.isatty():
            raise NotResumable("not creating the Job without a terminal to ask: pass --yes")
        return _ask(prompt)

    return confirm


def _escalation_reason(args: argparse.Namespace) -> str | None:
    if not args.escalate_only:
        return None
    return os.environ.get("REMEDIATION_ESCALATION_REASON") or "escalation requested (--escalate-only)"


def _docs(args: argparse.Namespace, registry: ActionRegistry) -> int:
    from remediation.docs import write_docs
    from remediation.loader import load_many

    runbooks = load_many(args.paths, registry)
    written = write_docs(runbooks, registry, Path(args.out))
    print(f"wrote {len(written)} file(s) to {args.out}")
    return EXIT_OK


def _actions(args: argparse.Namespace, registry: ActionRegistry) -> int:
    rows: list[dict[str, Any]] = []
    for name, spec in sorted(registry.items().items()):
        props = spec.params.get("properties", {})
        required = set(spec.params.get("required", ()))
        params = [
            {
                "name": key,
                "required": key in required,
                "type": _type_name(schema),
                **(
                    {"default": schema["default"]} if isinstance(schema, dict) and "default" in schema else {}
                ),
            }
            for key, schema in props.items()
        ]
        rows.append(
            {
                "name": name,
                "summary": spec.summary,
                "mutates": spec.mutates,
                "params": params,
                "outputs": list(spec.outputs),
            }
        )
    if args.output == "json":
        print(json.dumps(rows, ensure_ascii=False, indent=2, default=str))
        return EXIT_OK
    for row in rows:
        print(f"{row['name']}  ({'mutating' if row['mutates'] else 'read-only'})  {row['summary']}")
        for p in row["params"]:
            mark = "*" if p["required"] else " "
            default = f" = {json.dumps(p['default'], ensure_ascii=False)}" if "default" in p else ""
            print(f"    {mark} {p['name']}: {p['type']}{default}")
        if row["outputs"]:
            print(f"    outputs: {', '.join(row['outputs'])}")
    return EXIT_OK


def _type_name(schema: Any) -> str:
    if not isinstance(schema, dict):
        return "any"
    if "enum" in schema:
        return " | ".join(map(str, schema["enum"]))
    if "type" in schema:
        kind = schema["type"]
        return kind if isinstance(kind, str) else " | ".join(kind)
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return " | ".join(_type_name(s) for s in schema[key])
    return "any"


_COMMANDS = {
    "validate": _validate,
    "plan": _plan,
    "run": _run,
    "docs": _docs,
    "actions": _actions,
    "runs": _runs,
    "resume": _resume,
}


if __name__ == "__main__":
    sys.exit(main())
