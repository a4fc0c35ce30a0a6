"""``wslab student`` and ``wslab check``: learner copies without solutions, checked answers."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lessons import WORKBOOK_DIR, discover
from lessons.cli import STUDENT_DIR, UsageError
from lessons.cli.classroom import add_report_options
from lessons.cli.run import notebook_named


def cmd_student(args: argparse.Namespace) -> int:
    from lessons.kit.exercises import learner_copies, learner_path

    dest = Path(args.dir)
    named = [notebook_named(name) for name in args.lessons]  # lessons, or the capstone
    lessons = [lesson for lesson in discover() if not named or lesson.notebook in named]
    workbook = WORKBOOK_DIR if not named or WORKBOOK_DIR in {p.parent for p in named} else None
    existing = [learner_path(dest, lesson.notebook) for lesson in lessons]
    if workbook is not None:
        existing += [learner_path(dest, path) for path in workbook.glob("*.ipynb")]
    if not args.force and any(path.exists() for path in existing):
        raise UsageError(f"{dest} already holds learner notebooks; --force overwrites them")
    for path in learner_copies(lessons, workbook, dest):
        print(f"wrote {path}")
    first = args.lessons[0] if args.lessons else lessons[0].number
    print(f"open them with: wslab open {first} --dir {dest}")
    print(f"check your answers with: wslab check LESSON --dir {dest}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from lessons.classroom.checks import lesson_key
    from lessons.cli.classroom import learner_from, report_checks
    from lessons.kit.exercises import check_answers, learner_path

    path = learner_path(Path(args.dir), notebook_named(args.lesson))
    learner = learner_from(args, args.dir)
    if not path.is_file():
        raise UsageError(f"no learner notebook at {path}: run `wslab student {args.dir}` first")
    print(f"checking {path} (this runs the whole notebook)…", flush=True)
    results = check_answers(path, cell_timeout=args.cell_timeout)
    for result in results:
        if result.passed:
            print(f"✓ exercise {result.exercise}")
        else:
            print(f"✗ exercise {result.exercise}: {result.problem}\n  hint: {result.hint}")
    failed = sum(not result.passed for result in results)
    print(f"{len(results) - failed} passed, {failed} failed")
    return report_checks(learner, lesson_key(path), results, 1 if failed else 0)


def add(commands: Any) -> None:
    student = commands.add_parser("student", help="write learner copies without solutions")
    student.add_argument("dir", nargs="?", default=STUDENT_DIR, help=f"default: {STUDENT_DIR}")
    student.add_argument(
        "--lesson",
        dest="lessons",
        action="append",
        default=[],
        help="only this lesson, or capstone for the workbook (repeatable)",
    )
    student.add_argument("--force", action="store_true", help="overwrite existing copies")
    student.set_defaults(handler=cmd_student)

    check = commands.add_parser("check", help="check the exercises of a learner copy")
    check.add_argument(
        "lesson", help="a lesson (01, echo) or a workbook notebook (capstone, testing)"
    )
    check.add_argument("--dir", default=STUDENT_DIR, help=f"default: {STUDENT_DIR}")
    check.add_argument("--cell-timeout", type=float, default=180, help="seconds per cell")
    add_report_options(check)
    check.set_defaults(handler=cmd_check)
