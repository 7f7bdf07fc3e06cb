"""The names in a dataset directory (ARCHITECTURE.md, "Dataset directory") and in each sample.

Writers (``pipelines/``) and readers (``trainer/``, the report, the demo) use these constants and
never a literal, so a renamed file cannot split the two sides.
"""

# What training reads
MANIFEST_FILE = "manifest.json"  # shards (name, samples, bytes, sha256), totals, resolved options, versions
SIZES_FILE = "sizes.json"  # {shard: samples}, as OpenCLIP reads it
TOKENIZER_FILE = "tokenizer.json"  # the WordPiece tokenizer trained on the kept captions
VOCABULARY_FILE = "vocabulary.json"  # contract/vocabulary.py

# What people read
STATS_FILE = "stats.json"  # the funnel: per stage in/out and reasons
QUERY_COUNTS_FILE = "query_counts.json"  # kept pairs per allowlist query
REPORT_FILE = "report.html"
EXAMPLES_FILE = "examples.json"  # a few rejects per reason, for the report
REJECTS_DIR = "rejects"  # every reject, as parquet
EVAL_BLOCKLIST_FILE = "eval_blocklist.json"  # a copy of --eval_blocklist
KEPT_MARKER = "_fetched.json"  # --keep_fetched: an input file's kept fetch results are complete

MANIFEST_FORMAT_VERSION = 1  # manifest.json's ``format_version``

# Members of one sample in a shard: KEY.jpg (RGB JPEG), KEY.txt (the caption), KEY.json (these fields)
IMAGE_MEMBER = "jpg"
CAPTION_MEMBER = "txt"
META_MEMBER = "json"
SAMPLE_FIELDS = (
    "key",
    "url",
    "caption",
    "language",  # CLD2 code of the caption
    "width",
    "height",
    "original_width",
    "original_height",
    "sha256",
    "phash",  # 16 hex characters
    "queries",  # allowlist queries matched
    "credited_query",
    "synsets",  # n%08d WordNet noun synset ids
    "extra",  # input columns carried through
)
