#!/usr/bin/python3
"""The PyTorch twin of tinyseek: the same architecture, built from the same
config.json, loading the same model.safetensors (Hugging Face names, weights
stored (out, in) as nn.Linear stores them).

    python3 tests/reference/twin.py check DIR       compare with `tinyseek dump-grads --out DIR`
    python3 tests/reference/twin.py bench DIR ...    time the work `tinyseek bench --out DIR` timed

The model is written the way a PyTorch user would write it, with autograd
doing the backward, so that agreeing with it is evidence that tinyseek's
hand-written backward is right. Each block is

    x = x + attention(input_layernorm(x))
    x = x + ffn(post_attention_layernorm(x))

and a config picks the attention and the feed-forward layer from two tables,
ATTENTION and FFN (see attention_kind() and ffn_kind()):

    attention "gqa": multi-head attention with num_key_value_heads K/V heads
                     (= heads: MHA, chapter 2; fewer: GQA/MQA, chapter 3)
    attention "mla": Multi-head Latent Attention (chapter 4); training runs the
                     naive form, the KV-cache decode the absorbed form
    ffn "mlp":       the dense SwiGLU (chapter 2)
    ffn "moe":       DeepSeekMoE, routed + shared experts (chapter 5)

A new variant is one class with forward(x, pos, cache) (attention) or
forward(x) (feed-forward) plus a line in its table.

Multi-token prediction (chapter 6, num_nextn_predict_layers = D > 0): module k
is an ordinary Block at model.layers.{L+k-1} with three more tensors (enorm,
hnorm, eh_proj) and its own final norm (shared_head.norm); Transformer.mtp()
runs the chain h^k = block(eh_proj([hnorm(h^(k-1)[:T-k]); enorm(emb(t[k:]))]))
with the shared embedding and lm_head (DeepSeek-V3 section 2.2, the paper's
order of the concatenation).

RoPE rotates ADJACENT pairs (2i, 2i+1) by pos * theta_i, as tinyseek does
(DESIGN.md section 4).
"""
import math
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

IGNORE = -1  # target value that carries no loss (TS_IGNORE)


# --------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------

class Config:
    """config.json with tinyseek's defaults for the fields it may omit."""

    DEFAULTS = dict(model_type="llama", num_key_value_heads=None, head_dim=None, rms_norm_eps=1e-5,
                    rope_theta=10000.0, tie_word_embeddings=False, q_lora_rank=0, kv_lora_rank=0,
                    qk_nope_head_dim=0, qk_rope_head_dim=0, v_head_dim=0, n_routed_experts=0,
                    n_shared_experts=0, num_experts_per_tok=0, moe_intermediate_size=0,
                    first_k_dense_replace=0, n_group=1, topk_group=1, routed_scaling_factor=1.0,
                    scoring_func="softmax", norm_topk_prob=False, topk_method="greedy",
                    aux_loss_alpha=0.0, rope_scaling=None, num_nextn_predict_layers=0)

    def __init__(self, d):
        for k, v in self.DEFAULTS.items():
            setattr(self, k, v)
        for k, v in d.items():
            setattr(self, k, v)
        if self.num_key_value_heads is None:
            self.num_key_value_heads = self.num_attention_heads
        if self.head_dim is None:
            self.head_dim = self.hidden_size // self.num_attention_heads
        self.q_lora_rank = self.q_lora_rank or 0
        self.n_routed_experts = self.n_routed_experts or 0


def attention_kind(cfg):
    return "mla" if cfg.model_type in ("deepseek_v3", "deepseek_v2") else "gqa"


def ffn_kind(cfg, layer):
    # either model type may carry DeepSeekMoE layers (chapter 5 pairs them with llama attention)
    return "moe" if cfg.n_routed_experts > 0 and layer >= cfg.first_k_dense_replace else "mlp"


# --------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------

class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def yarn_get_mscale(factor, mscale):
    return 1.0 if factor <= 1 else 0.1 * mscale * math.log(factor) + 1.0


def rope_inv_freq(dim, base, yarn=None):
    """theta_i = base^(-2i/dim), rounded to float32 as tinyseek's table is; YaRN's blend as rope_inv_freq() in ops.c."""
    inv = np.array([np.float32(base ** (-2.0 * i / dim)) for i in range(dim // 2)], dtype=np.float64)
    if not yarn or yarn.get("factor", 1.0) <= 1.0:
        return inv
    factor = yarn["factor"]
    orig = yarn["original_max_position_embeddings"]

    def corr(rot):
        return dim * math.log(orig / (rot * 2 * math.pi)) / (2 * math.log(base))

    low = max(math.floor(corr(yarn.get("beta_fast", 32.0))), 0)
    high = min(math.ceil(corr(yarn.get("beta_slow", 1.0))), dim - 1)
    if low == high:
        high += 0.001
    ramp = np.clip((np.arange(dim // 2) - low) / (high - low), 0, 1)
    return np.float32(inv / factor * ramp + inv * (1 - ramp)).astype(np.float64)


class Rope(nn.Module):
    """cos/sin tables (max_pos, dim/2), times `amplitude` (YaRN's for MLA, as DeepSeek's code
    scales them); apply() rotates adjacent pairs of the last dim."""

    def __init__(self, dim, max_pos, base, yarn=None, amplitude=1.0):
        super().__init__()
        angle = np.arange(max_pos, dtype=np.float64)[:, None] * rope_inv_freq(dim, base, yarn)[None, :]
        cos = np.cos(angle).astype(np.float32) * np.float32(amplitude)
        sin = np.sin(angle).astype(np.float32) * np.float32(amplitude)
        self.register_buffer("cos", torch.from_numpy(cos), persistent=False)
        self.register_buffer("sin", torch.from_numpy(sin), persistent=False)

    def apply(self, x, pos):
        # x (..., T, H, d) with positions pos (T,); pairs (x0, x1) -> (x0 cos - x1 sin, x0 sin + x1 cos)
        c = self.cos[pos].to(x.dtype)[:, None, :]
        s = self.sin[pos].to(x.dtype)[:, None, :]
        x0, x1 = x[..., 0::2], x[..., 1::2]
        return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).flatten(-2)


def causal_attention(q, k, v, scale, offset=0):
    """q (B,Tq,H,Dqk), k (B,Tk,H,Dqk), v (B,Tk,H,Dv); query t sits at position offset+t and sees keys 0..offset+t."""
    Tq, Tk = q.shape[1], k.shape[1]
    s = torch.einsum("bthd,bshd->bhts", q, k) * scale
    if Tq > 1:
        mask = torch.ones(Tq, Tk, dtype=torch.bool, device=q.device).tril(offset)
        s = s.masked_fill(~mask, float("-inf"))
    return torch.einsum("bhts,bshd->bthd", torch.softmax(s, dim=-1), v)


# --------------------------------------------------------------------------
# Attention variants: forward(x (B,T,C), pos (T,), cache) -> (B,T,C)
# cache is None in training; in decoding a KVCache whose layer slot this
# module fills at positions pos (a contiguous run starting at cache.len).
# --------------------------------------------------------------------------

class KVCache:
    """Preallocated per-layer buffers for one batch of sequences of up to max_T tokens."""

    def __init__(self, n_layers, max_T):
        self.layers = [None] * n_layers
        self.max_T = max_T
        self.len = 0

    def slot(self, layer, shapes, B, dtype):
        if self.layers[layer] is None:
            self.layers[layer] = [torch.zeros(B, self.max_T, *s, dtype=dtype) for s in shapes]
        return self.layers[layer]


class GroupedQueryAttention(nn.Module):
    """MHA (Hkv = H), GQA (1 < Hkv < H), MQA (Hkv = 1): query head h uses K/V head h // (H/Hkv)."""

    def __init__(self, cfg, layer, rope):
        super().__init__()
        C, H, Hkv, D = cfg.hidden_size, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        self.H, self.Hkv, self.D, self.layer, self.rope = H, Hkv, D, layer, rope
        self.q_proj = nn.Linear(C, H * D, bias=False)
        self.k_proj = nn.Linear(C, Hkv * D, bias=False)
        self.v_proj = nn.Linear(C, Hkv * D, bias=False)
        self.o_proj = nn.Linear(H * D, C, bias=False)

    def forward(self, x, pos, cache=None):
        B, T, _ = x.shape
        q = self.rope.apply(self.q_proj(x).view(B, T, self.H, self.D), pos)
        k = self.rope.apply(self.k_proj(x).view(B, T, self.Hkv, self.D), pos)
        v = self.v_proj(x).view(B, T, self.Hkv, self.D)
        offset = 0
        if cache is not None:
            kc, vc = cache.slot(self.layer, [(self.Hkv, self.D)] * 2, B, x.dtype)
            offset = int(pos[0])
            kc[:, offset:offset + T] = k
            vc[:, offset:offset + T] = v
            k, v = kc[:, :offset + T], vc[:, :offset + T]
        group = self.H // self.Hkv
        if group > 1:
            k = k.repeat_interleave(group, dim=2)
            v = v.repeat_interleave(group, dim=2)
        ctx = causal_attention(q, k, v, 1.0 / math.sqrt(self.D), offset)
        return self.o_proj(ctx.reshape(B, T, self.H * self.D))


class LatentAttention(nn.Module):
    """Multi-head Latent Attention (DeepSeek-V2 section 2.1). Training: the naive form, which
    forms k and v per head. With a cache: the absorbed form, which caches only the normed
    latent c_kv and the roped shared key k_rope, folds W_UK into the query and W_UV after
    the attention."""

    def __init__(self, cfg, layer, rope):
        super().__init__()
        C, H = cfg.hidden_size, cfg.num_attention_heads
        self.H, self.layer, self.rope = H, layer, rope
        self.dn, self.dr, self.dv, self.dc = cfg.qk_nope_head_dim, cfg.qk_rope_head_dim, cfg.v_head_dim, cfg.kv_lora_rank
        dq = self.dn + self.dr
        self.rq = cfg.q_lora_rank
        if self.rq > 0:
            self.q_a_proj = nn.Linear(C, self.rq, bias=False)
            self.q_a_layernorm = RMSNorm(self.rq, cfg.rms_norm_eps)
            self.q_b_proj = nn.Linear(self.rq, H * dq, bias=False)
        else:
            self.q_proj = nn.Linear(C, H * dq, bias=False)
        self.kv_a_proj_with_mqa = nn.Linear(C, self.dc + self.dr, bias=False)
        self.kv_a_layernorm = RMSNorm(self.dc, cfg.rms_norm_eps)
        self.kv_b_proj = nn.Linear(self.dc, H * (self.dn + self.dv), bias=False)
        self.o_proj = nn.Linear(H * self.dv, C, bias=False)
        self.scale = dq ** -0.5
        ys = cfg.rope_scaling
        if ys and ys.get("factor", 1.0) > 1.0:
            self.scale *= yarn_get_mscale(ys["factor"], ys.get("mscale_all_dim", 0.0)) ** 2

    def queries(self, x, pos):
        B, T, _ = x.shape
        q = self.q_b_proj(self.q_a_layernorm(self.q_a_proj(x))) if self.rq > 0 else self.q_proj(x)
        q = q.view(B, T, self.H, self.dn + self.dr)
        return q[..., :self.dn], self.rope.apply(q[..., self.dn:], pos)

    def latents(self, x, pos):
        B, T, _ = x.shape
        kva = self.kv_a_proj_with_mqa(x)
        c_kv = self.kv_a_layernorm(kva[..., :self.dc])
        k_rope = self.rope.apply(kva[..., self.dc:].view(B, T, 1, self.dr), pos)
        return c_kv, k_rope

    def forward(self, x, pos, cache=None):
        B, T, _ = x.shape
        q_nope, q_rope = self.queries(x, pos)
        c_kv, k_rope = self.latents(x, pos)
        if cache is None:  # naive
            kv = self.kv_b_proj(c_kv).view(B, T, self.H, self.dn + self.dv)
            k = torch.cat((kv[..., :self.dn], k_rope.expand(B, T, self.H, self.dr)), dim=-1)
            q = torch.cat((q_nope, q_rope), dim=-1)
            ctx = causal_attention(q, k, kv[..., self.dn:], self.scale)
            return self.o_proj(ctx.reshape(B, T, self.H * self.dv))
        # absorbed: scores = q_nope W_UK c_kv + q_rope k_rope; out = W_UV (P c_kv)
        cc, rc = cache.slot(self.layer, [(self.dc,), (self.dr,)], B, x.dtype)
        offset = int(pos[0])
        cc[:, offset:offset + T] = c_kv
        rc[:, offset:offset + T] = k_rope[:, :, 0]
        c_all, r_all = cc[:, :offset + T], rc[:, :offset + T]
        w = self.kv_b_proj.weight.view(self.H, self.dn + self.dv, self.dc)
        w_uk, w_uv = w[:, :self.dn], w[:, self.dn:]
        q_lat = torch.einsum("bthn,hnc->bthc", q_nope, w_uk)
        s = (torch.einsum("bthc,bsc->bhts", q_lat, c_all) + torch.einsum("bthr,bsr->bhts", q_rope, r_all)) * self.scale
        if T > 1:
            mask = torch.ones(T, offset + T, dtype=torch.bool).tril(offset)
            s = s.masked_fill(~mask, float("-inf"))
        ctx_lat = torch.einsum("bhts,bsc->bthc", torch.softmax(s, dim=-1), c_all)
        ctx = torch.einsum("bthc,hvc->bthv", ctx_lat, w_uv)
        return self.o_proj(ctx.reshape(B, T, self.H * self.dv))


ATTENTION = {"gqa": GroupedQueryAttention, "mla": LatentAttention}


# --------------------------------------------------------------------------
# Feed-forward variants: forward(x (B,T,C)) -> (B,T,C); an extra loss term
# (MoE's auxiliary loss) goes in self.aux_loss (0 when there is none).
# --------------------------------------------------------------------------

class SwiGLU(nn.Module):
    def __init__(self, C, F_):
        super().__init__()
        self.gate_proj = nn.Linear(C, F_, bias=False)
        self.up_proj = nn.Linear(C, F_, bias=False)
        self.down_proj = nn.Linear(F_, C, bias=False)
        self.aux_loss = 0.0

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


def DenseMLP(cfg, layer):
    return SwiGLU(cfg.hidden_size, cfg.intermediate_size)


class Router(nn.Module):
    """mlp.gate: weight (E,C) and the selection-only bias e_score_correction_bias (E)."""

    def __init__(self, C, E):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(E, C))
        self.e_score_correction_bias = nn.Parameter(torch.zeros(E), requires_grad=False)


class DeepSeekMoE(nn.Module):
    """y = shared(x) + sum over the K chosen experts of g_k expert_k(x) (DeepSeek-V3 section 2.1.2).
    Scores s = softmax or sigmoid of the router logits; the choice uses s + bias, restricted to
    the topk_group best groups (a group ranks by the sum of its two best biased scores); the
    weights g use s without the bias, renormalised over the K when norm_topk_prob, times
    routed_scaling_factor. Auxiliary loss (aux_loss_alpha > 0): alpha * mean over sequences of
    sum_i f_i P_i, f_i = E/(K T) * (tokens of the sequence routed to i), P_i = mean over the
    sequence of s_i / sum_j s_j."""

    def __init__(self, cfg, layer):
        super().__init__()
        C, E, Fe = cfg.hidden_size, cfg.n_routed_experts, cfg.moe_intermediate_size
        self.cfg = cfg
        self.gate = Router(C, E)
        self.experts = nn.ModuleList([SwiGLU(C, Fe) for _ in range(E)])
        self.shared_experts = SwiGLU(C, cfg.n_shared_experts * Fe) if cfg.n_shared_experts > 0 else None
        self.aux_loss = 0.0

    def route(self, s):
        cfg = self.cfg
        E, K = cfg.n_routed_experts, cfg.num_experts_per_tok
        biased = (s + self.gate.e_score_correction_bias).detach()
        if cfg.n_group > 1:
            g = biased.view(-1, cfg.n_group, E // cfg.n_group)
            group_score = g.topk(min(2, E // cfg.n_group), dim=-1).values.sum(-1)
            keep = group_score.topk(cfg.topk_group, dim=-1).indices
            mask = torch.zeros_like(group_score, dtype=torch.bool).scatter_(1, keep, True)
            biased = biased.masked_fill(~mask.repeat_interleave(E // cfg.n_group, dim=1), float("-inf"))
        idx = biased.topk(K, dim=-1).indices
        w = s.gather(1, idx)
        if cfg.norm_topk_prob:
            w = w / (w.sum(-1, keepdim=True) + 1e-20)
        return idx, w * cfg.routed_scaling_factor

    def forward(self, x):
        cfg = self.cfg
        B, T, C = x.shape
        xf = x.reshape(B * T, C)
        logits = F.linear(xf, self.gate.weight)
        s = torch.sigmoid(logits) if cfg.scoring_func == "sigmoid" else torch.softmax(logits, dim=-1)
        idx, w = self.route(s)
        y = torch.zeros_like(xf)
        for e, expert in enumerate(self.experts):
            tok, slot = (idx == e).nonzero(as_tuple=True)
            if tok.numel():
                y = y.index_add(0, tok, w[tok, slot, None] * expert(xf[tok]))
        if self.shared_experts is not None:
            y = y + self.shared_experts(xf)
        self.aux_loss = 0.0
        if cfg.aux_loss_alpha > 0:
            E, K = cfg.n_routed_experts, cfg.num_experts_per_tok
            counts = F.one_hot(idx, E).sum(1).view(B, T, E).sum(1).to(x.dtype)  # (B,E)
            f = counts * E / (K * T)
            P = (s / s.sum(-1, keepdim=True)).view(B, T, E).mean(1)
            self.aux_loss = cfg.aux_loss_alpha * (f * P).sum(-1).mean()
        return y.view(B, T, C)


FFN = {"mlp": DenseMLP, "moe": DeepSeekMoE}


# --------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------

class Block(nn.Module):
    def __init__(self, cfg, layer, rope):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = ATTENTION[attention_kind(cfg)](cfg, layer, rope)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = FFN[ffn_kind(cfg, layer)](cfg, layer)

    def forward(self, x, pos, cache=None):
        x = x + self.self_attn(self.input_layernorm(x), pos, cache)
        return x + self.mlp(self.post_attention_layernorm(x))


class MTPModule(Block):
    """DeepSeek-V3's multi-token prediction module: a block plus enorm, hnorm, eh_proj (C, 2C)
    and shared_head.norm, named as in V3's checkpoint (model.layers.{L+k-1}.*)."""

    def __init__(self, cfg, layer, rope):
        super().__init__(cfg, layer, rope)
        C = cfg.hidden_size
        self.enorm = RMSNorm(C, cfg.rms_norm_eps)
        self.hnorm = RMSNorm(C, cfg.rms_norm_eps)
        self.eh_proj = nn.Linear(2 * C, C, bias=False)
        self.shared_head = nn.Module()
        self.shared_head.norm = RMSNorm(C, cfg.rms_norm_eps)


class Decoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        mla = attention_kind(cfg) == "mla"
        ys = cfg.rope_scaling
        amplitude = 1.0
        if mla and ys:  # YaRN's attention temperature, split between the RoPE table and the softmax scale
            amplitude = np.float32(yarn_get_mscale(ys["factor"], ys.get("mscale", 1.0))) / np.float32(
                yarn_get_mscale(ys["factor"], ys.get("mscale_all_dim", 0.0)))
        self.rope = Rope(cfg.qk_rope_head_dim if mla else cfg.head_dim, cfg.max_position_embeddings,
                         cfg.rope_theta, ys, amplitude)
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        L, D = cfg.num_hidden_layers, cfg.num_nextn_predict_layers
        self.layers = nn.ModuleList([Block(cfg, l, self.rope) for l in range(L)] +
                                    [MTPModule(cfg, L + k, self.rope) for k in range(D)])
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)


class Transformer(nn.Module):
    """Parameter names are the Hugging Face ones: model.embed_tokens.weight, model.layers.N...., lm_head.weight."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.model = Decoder(cfg)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        if cfg.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def forward(self, tokens, targets=None, cache=None, start=0):
        """tokens (B,T) at positions start..start+T-1. Returns logits (B,T,V), and with targets
        also the mean cross-entropy over targets != -1 plus the feed-forward layers' aux losses."""
        T = tokens.shape[1]
        pos = torch.arange(start, start + T)
        x = self.model.embed_tokens(tokens)
        for block in self.main_blocks():
            x = block(x, pos, cache)
        self.hidden = x  # the last hidden state, before the final norm (tinyseek's m->hidden)
        logits = self.lm_head(self.model.norm(x))
        if targets is None:
            return logits
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE)
        for block in self.main_blocks():
            loss = loss + block.mlp.aux_loss
        return logits, loss

    def main_blocks(self):
        return self.model.layers[:self.cfg.num_hidden_layers]

    def mtp(self, tokens, hidden):
        """The D modules after a forward: per depth k, logits (B, T-k, V) predicting t_{i+k+1},
        and the modules' balance losses. hidden = self.hidden, h^0."""
        L, T = self.cfg.num_hidden_layers, tokens.shape[1]
        out, aux, h = [], 0.0, hidden
        for k in range(1, self.cfg.num_nextn_predict_layers + 1):
            if T - k <= 0:
                break
            mod = self.model.layers[L + k - 1]
            x = mod.eh_proj(torch.cat([mod.hnorm(h[:, :T - k]), mod.enorm(self.model.embed_tokens(tokens[:, k:]))], -1))
            h = Block.forward(mod, x, torch.arange(T - k))
            out.append(self.lm_head(mod.shared_head.norm(h)))
            aux = aux + mod.mlp.aux_loss
        return out, aux

    @torch.no_grad()
    def load(self, tensors, strict=True):
        """Copy a dict name -> np.ndarray in; every parameter must be there with its shape."""
        own = dict(self.named_parameters())
        missing = [n for n in own if n not in tensors]
        extra = [n for n in tensors if n not in own]
        if strict and (missing or extra):
            raise ValueError(f"checkpoint does not match the twin: missing {missing[:5]}, unexpected {extra[:5]}")
        for n, p in own.items():
            a = tensors[n]
            if tuple(a.shape) != tuple(p.shape):
                raise ValueError(f"{n}: checkpoint shape {a.shape}, twin shape {tuple(p.shape)}")
            p.copy_(torch.from_numpy(np.ascontiguousarray(a)))


def load_model(folder, dtype=torch.float32):
    """A Transformer from a tinyseek (= Hugging Face) model folder."""
    import json
    import os

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import st

    with open(os.path.join(folder, "config.json")) as f:
        cfg = Config(json.load(f))
    model = Transformer(cfg)
    tensors, _ = st.load(os.path.join(folder, "model.safetensors"))
    model.load(tensors)
    return model.to(dtype)


# --------------------------------------------------------------------------
# Chapter 8: the GRPO loss on given rollouts (src/train/grpo.h)
# --------------------------------------------------------------------------

def grpo_loss(logits, targets, rewards, old_logp, ref_logp, G, eps_low, eps_high, beta, adv_eps, scale_by_std,
              norm, max_len, drop_zero_var):
    """GRPO's loss -J as the papers write it, for autograd to differentiate.

    logits (n,T,V); targets (n,T) with IGNORE outside the completions; rewards (n); old_logp, ref_logp (n,T)
    given (old_logp None: pi_old is the policy itself, rho = 1 exactly, as at the first of mu updates); groups of
    G consecutive sequences. norm: 0 per completion then group (DeepSeekMath eq. 3), 1 token
    level (DAPO), 2 a constant n*max_len (Dr. GRPO). Returns (loss, (clip fraction, mean k3 (0 when beta = 0),
    zero-variance-group fraction, mean entropy), regimes) with the statistics over all completion tokens, and
    regimes the number of completion tokens of counted groups in each case the gradient treats apart: "low"
    (A < 0, clipped below), "high" (A > 0, clipped above), "window" (A > 0, 1+eps_low < ratio <= 1+eps_high:
    clipped only without clip-higher)."""
    mask = targets != IGNORE
    logp_all = F.log_softmax(logits, dim=-1)
    logp = logp_all.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    if old_logp is None:
        old_logp = logp.detach()
    r = rewards.reshape(-1, G)
    zero_var = (r == r[:, :1]).all(dim=1)
    centred = r - r.mean(dim=1, keepdim=True)
    adv = centred / (r.std(dim=1, unbiased=False, keepdim=True) + adv_eps) if scale_by_std else centred
    adv = torch.where(zero_var.unsqueeze(1), torch.zeros_like(adv), adv).reshape(-1, 1)
    ratio = torch.exp(torch.clamp(logp - old_logp, -20.0, 20.0))
    surrogate = torch.min(ratio * adv, torch.clamp(ratio, 1 - eps_low, 1 + eps_high) * adv)
    u = torch.clamp(ref_logp - logp, -20.0, 20.0)
    k3 = torch.exp(u) - u - 1
    J = surrogate - beta * k3 if beta > 0 else surrogate
    used = (~zero_var if drop_zero_var else torch.ones_like(zero_var)).repeat_interleave(G).to(logits.dtype)
    lengths = mask.sum(dim=1).to(logits.dtype)
    per_seq = (J * mask).sum(dim=1)
    n_used = used.sum()
    if norm == 0:
        loss = -(used * per_seq / lengths).sum() / n_used
    elif norm == 1:
        loss = -(used * per_seq).sum() / (used * lengths).sum()
    else:
        loss = -(used * per_seq).sum() / (n_used * max_len)
    with torch.no_grad():
        clipped = ((adv > 0) & (ratio > 1 + eps_high)) | ((adv < 0) & (ratio < 1 - eps_low))
        p = logp_all.exp()
        entropy = -(p * logp_all).sum(-1)
        tokens = mask.sum()
        stats = ((clipped & mask).sum() / tokens, (k3 * mask).sum() / tokens if beta > 0 else torch.tensor(0.0),
                 zero_var.to(logits.dtype).mean(), (entropy * mask).sum() / tokens)
        counted = mask & (used.reshape(-1, 1) > 0)
        regimes = {"low": int((counted & (adv < 0) & (ratio < 1 - eps_low)).sum()),
                   "high": int((counted & (adv > 0) & (ratio > 1 + eps_high)).sum()),
                   "window": int((counted & (adv > 0) & (ratio > 1 + eps_low) & (ratio <= 1 + eps_high)).sum())}
    return loss, stats, regimes


# --------------------------------------------------------------------------
# Chapter 9: the logit-distillation loss on given teacher logits (src/train/distill.h)
# --------------------------------------------------------------------------

def kd_loss(logits, teacher_logits, targets, alpha, temperature, reverse):
    """alpha * CE(student, data) + (1 - alpha) * T^2 * KL at temperature T, over the rows whose target is not
    IGNORE, as a PyTorch user writes it (F.cross_entropy, F.kl_div), for autograd to differentiate.

    logits, teacher_logits (N,V); targets (N). Forward KL(p_teacher || p_student) (Hinton), or with reverse
    KL(p_student || p_teacher). Returns (loss, (mean CE, mean KL before T^2, top-1 agreement))."""
    mask = targets != IGNORE
    zs, zt, y = logits[mask], teacher_logits[mask], targets[mask]
    ce = F.cross_entropy(zs, y)
    log_ps = F.log_softmax(zs / temperature, dim=-1)
    log_pt = F.log_softmax(zt / temperature, dim=-1)
    # F.kl_div(input, target) = sum target * (log target - input): the target is the distribution averaged over
    if reverse:
        kl = F.kl_div(log_pt, log_ps, log_target=True, reduction="batchmean")
    else:
        kl = F.kl_div(log_ps, log_pt, log_target=True, reduction="batchmean")
    loss = alpha * ce + (1 - alpha) * temperature ** 2 * kl
    with torch.no_grad():
        agree = (zs.argmax(-1) == zt.argmax(-1)).to(logits.dtype).mean()
    return loss, (ce, kl, agree)


def main(argv):
    usage = "usage: twin.py check DIR [--dtype float64] [--tol 1e-4] | twin.py bench DIR [--threads N] ..."
    if len(argv) < 2 or argv[1] not in ("check", "bench"):
        print(usage, file=sys.stderr)
        return 2
    if argv[1] == "check":
        import crosscheck
        return crosscheck.main(argv[2:])
    import bench_twin
    return bench_twin.main(argv[2:])


if __name__ == "__main__":
    import os

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main(sys.argv))
