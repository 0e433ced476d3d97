#!/usr/bin/env python3
"""Writes a paperboy configuration with N synthetic subscribers, for benches/throughput.sh.

The population is reproducible: subscriber i is drawn from its own generator seeded with
(seed, i), so the first K subscribers are the same whatever N is (a sample config with
--subscribers K describes the first K of the big one). Each subscriber follows 1-5 of the
topics below, drawn with a Zipf-like popularity (weight 1/rank); a few carry their own
min_upvotes, max_papers, exclude or send_empty. Nobody has deliver_at: every digest is due at
once.

Usage: gen_subscribers.py --subscribers N --port PORT --database-url URL --outbox DIR
                          [--concurrency C] [--seed S] [--out FILE]
Only the Python standard library is used.
"""

import argparse
import random
import sys

# ~40 topics, most popular first (the Zipf rank). Each: (name, {key: value}) with the keys of
# [topics.NAME] in config/default.toml; a mix of keyword lists, queries, and the options.
TOPICS = [
    ("llm-agents", {"query": '"LLM agents" OR "language model agents" OR agentic OR (agent* AND ("large language" OR LLM*))', "max_papers": 8}),
    ("reasoning", {"keywords": ["reasoning", "chain-of-thought", "test-time scaling", "math reasoning"]}),
    ("diffusion", {"keywords": ["diffusion", "text-to-image", "image generation", "flow matching"], "exclude": ["reaction-diffusion"], "min_upvotes": 2}),
    ("multimodal", {"keywords": ["multimodal", "omni-modal", "MLLM", "multimodal large language models"]}),
    ("reinforcement-learning", {"query": '"reinforcement learning" OR RLHF OR GRPO OR "policy optimization" OR "reward model*"'}),
    ("vision-language", {"keywords": ["vision-language", "vision language models", "VLM", "visual question answering"]}),
    ("video-generation", {"query": '"video generation" OR "text-to-video" OR title:video*', "sort": "relevance", "max_papers": 5}),
    ("code-generation", {"keywords": ["code generation", "program synthesis", "coding agents", "software engineering"]}),
    ("retrieval", {"query": 'retrieval OR RAG OR "retrieval-augmented" OR "search engine*"', "sort": "relevance"}),
    ("benchmarks", {"query": "title:bench* OR benchmark OR \"evaluation framework\"", "max_papers": 5}),
    ("quantization", {"keywords": ["quantization", "quantized", "low-bit", "int4", "post-training quantization"]}),
    ("efficient-inference", {"keywords": ["efficient inference", "speculative decoding", "kv cache", "sparse attention", "parallel decoding"]}),
    ("robotics", {"query": 'robot* OR "vision-language-action" OR manipulation OR embodied OR "sim-to-real"'}),
    ("web-agents", {"query": '"web agents" OR "GUI agent*" OR "computer-use" OR browser', "min_upvotes": 1}),
    ("3d-vision", {"keywords": ["3D", "point cloud", "gaussian splatting", "NeRF", "3D reconstruction", "spatial reasoning"]}),
    ("speech", {"keywords": ["speech", "text-to-speech", "speech recognition", "ASR", "spoken language", "voice"]}),
    ("audio", {"query": "audio* OR music OR sound"}),
    ("alignment-safety", {"keywords": ["alignment", "safety", "jailbreak", "red teaming", "harmless"]}),
    ("pretraining-data", {"query": '"training data" OR "data engine" OR dataset OR "data curation" OR "synthetic data"', "max_papers": 6}),
    ("fine-tuning", {"keywords": ["supervised finetuning", "fine-tuning", "finetuning", "LoRA", "instruction tuning", "SFT"]}),
    ("memory-and-skills", {"query": "memory OR skill* OR \"continual learning\""}),
    ("distillation", {"keywords": ["distillation", "knowledge distillation", "on-policy distillation"]}),
    ("image-editing", {"keywords": ["image editing", "style transfer", "virtual try-on", "inpainting"]}),
    ("world-models", {"query": '"world model*" OR simulator OR "physics simulation" OR physical'}),
    ("mixture-of-experts", {"keywords": ["mixture of experts", "MoE", "Mixture-of-Transformers", "sparse experts"]}),
    ("attention-architectures", {"query": 'attention OR transformer* OR "state space" OR mamba', "min_upvotes": 5}),
    ("long-context", {"keywords": ["long context", "long-context", "long-horizon", "context length"]}),
    ("tool-use", {"keywords": ["tool use", "tool invocation", "function calling", "tool learning"]}),
    ("evaluation-methods", {"query": "evaluation OR \"LLM-as-a-judge\" OR leaderboard -title:survey"}),
    ("popular", {"query": "upvotes>=20", "max_papers": 5}),
    ("open-source-code", {"query": "repo:yes upvotes>=3", "max_papers": 5}),
    ("anomaly-detection", {"keywords": ["anomaly detection", "out-of-distribution", "zero-shot anomaly detection"]}),
    ("graph-learning", {"keywords": ["graph neural network", "knowledge graph", "graph learning", "PageRank"]}),
    ("user-simulation", {"keywords": ["user simulation", "personalization", "personalized", "recommendation"]}),
    ("low-level-vision", {"keywords": ["low-level vision", "super-resolution", "denoising", "image restoration", "photometric"]}),
    ("interpretability", {"keywords": ["interpretability", "probing", "mechanistic", "attention heads", "neurons"]}),
    ("medical-ai", {"keywords": ["medical", "clinical", "radiology", "healthcare", "biomedical"]}),
    ("time-series", {"keywords": ["time series", "forecasting", "temporal"]}),
    ("games", {"query": "game* OR Pokemon OR Minecraft"}),
    ("theory", {"keywords": ["generalization bound", "convergence", "theoretical analysis", "optimization dynamics"]}),
    ("surveys", {"query": "title:survey OR title:review OR title:rethinking", "max_papers": 3}),
]

DOMAINS = ["example.org", "example.com", "example.net", "mail.example.org", "lab.example.edu"]
# How many topics a subscriber follows: 1 to 5, fewer more often.
TOPIC_COUNT_WEIGHTS = [0.30, 0.30, 0.20, 0.12, 0.08]
EXCLUDES = ["title:survey", "benchmark OR title:bench*", "medical OR clinical", "upvotes<2"]


def toml_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return toml_str(v)


def pick_topics(rng, weights):
    """k distinct topic indices, each drawn with probability proportional to its weight."""
    k = rng.choices(range(1, 6), TOPIC_COUNT_WEIGHTS)[0]
    chosen = []
    w = list(weights)
    for _ in range(k):
        i = rng.choices(range(len(w)), w)[0]
        chosen.append(i)
        w[i] = 0.0
    return chosen


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subscribers", type=int, required=True)
    ap.add_argument("--port", type=int, required=True, help="the SMTP sink's port on 127.0.0.1")
    ap.add_argument("--database-url", required=True)
    ap.add_argument("--outbox", required=True, help="delivery.outbox_dir (used by --dry-run)")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", help="write here instead of stdout")
    a = ap.parse_args()

    weights = [1.0 / (rank + 1) for rank in range(len(TOPICS))]
    out = []
    w = out.append
    w("# Generated by benches/gen_subscribers.py: %d subscribers, seed %d.\n" % (a.subscribers, a.seed))
    w("[delivery]\ntransport = \"smtp\"\noutbox_dir = %s\nconcurrency = %d\n" % (toml_str(a.outbox), a.concurrency))
    w("max_per_second = 0\nmax_per_hour = 0\n\n")
    w("[smtp]\nhost = \"127.0.0.1\"\nport = %d\nsecurity = \"none\"\n" % a.port)
    w("from = \"ML Paper Digest <digest@example.org>\"\nhello_name = \"bench.example.org\"\n\n")
    w("[database]\nurl = %s\n\n" % toml_str(a.database_url))
    # Signed one-click unsubscribe links, as in production (an HMAC per message).
    w("[unsubscribe]\nbase_url = \"https://digest.example.org/unsubscribe\"\n")
    w("secret = \"bench-secret-0123456789abcdef\"\n\n")
    for name, opts in TOPICS:
        w("[topics.%s]\n" % name)
        for k, v in opts.items():
            w("%s = %s\n" % (k, toml_value(v)))
        w("\n")
    for i in range(a.subscribers):
        rng = random.Random(a.seed * 1_000_003 + i)
        topics = [TOPICS[t][0] for t in pick_topics(rng, weights)]
        w("[[subscribers]]\nemail = \"reader%06d@%s\"\n" % (i, DOMAINS[i % len(DOMAINS)]))
        if rng.random() < 0.5:
            w("name = \"Reader %d\"\n" % i)
        w("topics = %s\n" % toml_value(topics))
        r = rng.random()
        if r < 0.10:
            w("min_upvotes = %d\n" % rng.randint(2, 15))
        elif r < 0.20:
            w("max_papers = %d\n" % rng.randint(3, 10))
        elif r < 0.23:
            w("exclude = %s\n" % toml_str(rng.choice(EXCLUDES)))
        if rng.random() < 0.05:
            w("send_empty = true\n")
        w("\n")
    text = "".join(out)
    if a.out:
        with open(a.out, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
