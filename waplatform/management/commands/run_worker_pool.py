from django.conf import settings
from django.core.management.base import CommandError
from django_rq.queues import get_queues
from django_rq.utils import reset_db_connections
from django_rq.workers import get_worker_class
from rq.logutils import setup_loghandlers

from waplatform.checks import ServiceCommand
from waplatform.gc_freeze import freeze_startup_objects
from waplatform.worker_pool import PlatformWorkerPool
from waplatform.worker_preload import preload_for


class Command(ServiceCommand):
    help = "Run a pool of rq workers on the given queues (the platform's worker class, clean shutdown)."

    def add_arguments(self, parser):
        parser.add_argument("queues", nargs="+")
        parser.add_argument("--num-workers", type=int, default=1)
        parser.add_argument("--burst", action="store_true")

    def handle(self, *args, queues, num_workers, burst, **options):
        if num_workers < 1:
            raise CommandError("--num-workers must be at least 1")
        # verbosity 1 is the default: settings.RQ_LOG_LEVEL then decides (WARNING unless set).
        logging_level = {0: "WARNING", 1: settings.RQ_LOG_LEVEL}.get(options["verbosity"], "DEBUG")
        setup_loghandlers(logging_level)
        rq_queues = get_queues(*queues)
        pool = PlatformWorkerPool(
            queues=rq_queues,
            connection=rq_queues[0].connection,
            num_workers=num_workers,
            worker_class=get_worker_class(),
        )
        preload_for(queues)  # each worker's first job would import these itself (waplatform/worker_preload.py)
        reset_db_connections()  # never share a DB socket across the fork
        freeze_startup_objects()  # the workers keep sharing the parent's pages (waplatform/gc_freeze.py)
        pool.start(burst=burst, logging_level=logging_level)
