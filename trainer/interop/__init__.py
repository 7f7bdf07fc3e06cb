"""Interoperability with OpenCLIP: export a CLIP/SigLIP checkpoint trained here as an OpenCLIP model
directory, and import an OpenCLIP model (weights, architecture and tokenizer) to start training from
(``--init-from``). See ``openclip.py`` for the mapping and ``clip_bpe.py`` for OpenAI's tokenizer."""
