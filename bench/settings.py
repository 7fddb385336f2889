"""Settings for the benchmarks: the product's settings plus one trivial view (bench.urls).

Everything else (database, broker, media, keys) comes from the environment that
bench/common.py sets for every process it starts, exactly as in production.
"""

from project.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
# Django's test client (the in-process gallery benchmark) calls itself "testserver".
ALLOWED_HOSTS = [*ALLOWED_HOSTS, "testserver"]  # noqa: F405
# The studio refuses a member's 31st submission in a minute (429). The burst benchmark
# compares 50 members x 10 (within that limit) with ONE member x 500 to show the wallet
# lock is per member, so the bench lifts the limit; everything else is the product's.
KILN_GENERATE_PER_MINUTE = 100_000
