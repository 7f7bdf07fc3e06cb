"""Names of files the curation job writes that modules without Beam (the report) also need.

Kept free of imports so ``curation-report`` can name them without loading Beam. (The other names live
beside their writers: ``pipelines.stats``, ``pipelines.write``, ``pipelines.output_dir``.)
"""

REJECTS_DIR = "rejects"
EXAMPLES_FILE = "examples.json"  # pipelines.examples: a few rejects per reason, for the report
KEPT_MARKER = "_fetched.json"  # pipelines.kept_fetched: an input file's kept shards are complete
