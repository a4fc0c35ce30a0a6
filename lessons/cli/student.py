"""``wslab student`` and ``wslab check``: learner copies without solutions, checked answers."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lessons import WORKBOOK_DIR, discover
from lessons.cli import (
    STUDENT_DIR,
    UsageError,
    command,
    notebook_named,
    output_dir,
    seconds,
)
from lessons.cli.classroom import add_report_options


def cmd_student(args: argparse.Namespace) -> int:
    from lessons.course.exercises import learner_copies, learner_path

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
    from lessons.course.exercises import check_answers, learner_path

    path = learner_path(Path(args.dir), notebook_named(args.lesson))
    if Path(args.dir).exists() and not Path(args.dir).is_dir():
        raise UsageError(f"--dir {args.dir}: a file, not the folder of a learner copy")
    learner = learner_from(args, args.dir)
    if not path.is_file():
        raise UsageError(f"no learner notebook at {path}: run `wslab student {args.dir}` first")
    print(f"checking {path} (this runs the whole notebook)…", flush=True)
    results = check_answers(path, cell_timeout=args.cell_timeout)
    for result in results:
        if result.passed:
            print(f"✓ {result.label}")
        else:
            print(f"✗ {result.label}: {result.problem}\n  hint: {result.hint}")
    failed = sum(not result.passed for result in results)
    print(f"{len(results) - failed} passed, {failed} failed")
    return report_checks(learner, lesson_key(path), results, 1 if failed else 0)


def add(commands: Any) -> None:
    student = command(
        commands,
        "student",
        "write learner copies of the notebooks, with the exercise solutions left out",
        f"wslab student --lesson 01\nwslab open 01 --dir {STUDENT_DIR}",
    )
    student.add_argument(
        "dir", nargs="?", type=output_dir, default=STUDENT_DIR, help="the folder to write"
    )
    student.add_argument(
        "--lesson",
        dest="lessons",
        metavar="LESSON",
        action="append",
        default=[],
        help="only this lesson, or capstone (capstone2) for the workbook (repeatable)",
    )
    student.add_argument("--force", action="store_true", help="overwrite existing copies")
    student.set_defaults(handler=cmd_student)

    check = command(
        commands,
        "check",
        "run a learner copy's notebook and say which exercises pass, with a hint for each "
        "that fails",
        f"wslab check 01 --dir {STUDENT_DIR}",
    )
    check.add_argument(
        "lesson", help="a lesson (01, echo) or a workbook notebook (capstone, capstone2, testing)"
    )
    check.add_argument("--dir", default=STUDENT_DIR, help="the learner copy (wslab student)")
    check.add_argument("--cell-timeout", type=seconds, default=180, help="seconds per cell")
    add_report_options(check)
    check.set_defaults(handler=cmd_check)
