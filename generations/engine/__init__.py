"""The job engine: a state machine over ``Generation.status``, one module per stage.

    submit.py     queued → submitted: send the job to its provider, exactly once
    poll.py       submitted, running → running, downloading: ask the provider, record the answer
    download.py   downloading → succeeded: fetch, check and store the outputs, capture the cost
    recovery.py   the sweep: rows whose wake-up was lost or whose worker died
    common.py     what the stages share: the job's key and model, backoff, the writes
    wakeups.py    the Celery tasks the engine wakes, named (never imported)

The Celery tasks (``generations.tasks``) are thin wake-ups that call these
modules with a primary key; the engine never imports them back.

The state machine
-----------------

                 submit                 poll                  poll                   download
    queued ─────────────▶ submitted ─────────────▶ running ─────────────▶ downloading ─────────────▶ succeeded
     │  ↺ not sent:          │  │                    │                       ▲  │                   (captured)
     │    sent again         │  └───── poll: done at once ───────────────────┘  │
     │    later              └──────────┬────────────┘                          │
     │                                  │                                       │
     ├─▶ failed     released            ├─▶ failed      released, or held       └─▶ failed      held
     ├─▶ cancelled  released            ├─▶ cancelled   released
     └─▶ expired    held                └─▶ expired     held
           │
           └─▶ submitted  (the lost send came back with a job id)

Each arrow is one compare-and-swap, ``Generation.objects.filter(pk=…,
status=expected).update(...)``: of two workers racing, exactly one moves the
row and the other sees 0 rows and stops. The database is the source of truth;
Celery messages are only wake-ups, and ``recovery.requeue_stuck`` finds any
row whose wake-up was lost. ``succeeded``, ``failed``, ``cancelled`` and
``expired`` are final (``TERMINAL``), but for the one way back above.

    queued → submitted       submit: the provider took the job (its job id saved)
    queued → queued          submit: the request provably never reached the provider; sent again with backoff
    queued → failed          submit: refused by the provider; nothing could be sent (key, model, inputs);
                             not reached after MAX_SUBMIT_ATTEMPTS
    queued → cancelled       services.cancel_generation, before a worker claimed it
    queued → expired         submit: the send's outcome is unknown; recovery: no job id within the submit lease
    expired → submitted      submit: the slow send did come back with a job id
    submitted → running      poll: the provider started it
    in flight → downloading  poll (or a synchronous provider's submit): done, with results to fetch
    in flight → failed       poll: the provider failed it or refused its status; or no results, a crashing
                             adapter, a key or model gone (held)
    in flight → cancelled    poll: the provider cancelled it; services.cancel_generation asked it to
    in flight → expired      poll: no result by the deadline (the provider may still finish and bill)
    downloading → succeeded  download: every output stored
    downloading → failed     download: the results could not be kept

Money (accounts.credits.services): a provider's "failed" or "cancelled", and a request
the provider refused, release the reservation; success captures the actual
cost (the provider's figure, else the price rule). Whenever the provider may
have billed without telling us (a lost submit, our deadline passing, a
status we cannot read, results we could not keep) the row gets
``needs_review`` and the reservation is kept ("held") for an admin to settle.
"""
