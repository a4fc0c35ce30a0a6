"""Classroom mode: the instructor sees, live, where every learner stands.

``wslab classroom`` serves ``app.py`` on the state in ``store.py``; learners report with
``client.py`` (``wslab check --report``, ``wslab hand``, and the notebook's check cells
through ``notebook.py``). From a notebook opened with ``--report``::

    from lessons.classroom import hand
    hand("stuck")  # or hand("done")
"""

from lessons.classroom.client import hand

__all__ = ["hand"]
