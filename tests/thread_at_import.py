"""A module that starts a thread when imported: what a warm worker must not fork with."""

import threading
import time

threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()
