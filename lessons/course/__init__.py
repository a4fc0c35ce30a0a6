"""The course's own tooling, beside the kit that runs its experiments.

- ``versions``: what the course says a library does, by release (the claims), and the check
  that they still hold (``wslab drift``);
- ``budget``: the one formula for a notebook's learning time;
- ``book``: the course as a static site (``wslab book``);
- ``exercises``: learners' copies (``wslab student``, ``wslab open``) and the check of their
  answers (``wslab check``), with the wrong answers each check must refuse.

Imports go one way: ``lessons.cli`` -> ``lessons.course`` -> ``lessons.kit`` -> ``lessons``.
"""
