"""Everything that exists only for the demo (``make run``) and the execution
tests, kept out of the real code paths:

- ``load``: the seed 000 situation (``manage.py demo``), with the demo users;
- ``procedures``: the two demo procedures on the ``local`` executor;
- ``faults``: fault injection by task params for the ``local`` executor,
  used when ``LOCAL_EXECUTOR_FAULTS`` is on;
- ``stale``: the old runtime that keeps re-reporting its failed run
  (``DEMO_STALE_REPORTER``, beat only)."""
