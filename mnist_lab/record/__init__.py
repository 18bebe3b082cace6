"""The run folder: its file names, statuses and formats (:mod:`.folder`), the saved-model
format (:mod:`.checkpoint`), the metrics file (:mod:`.metrics`), the lock with its
heartbeat (:mod:`.lock`) and atomic writes (:mod:`.atomic`). Imports no training or
cluster code, and torch only to read and write ``.pt`` files."""
