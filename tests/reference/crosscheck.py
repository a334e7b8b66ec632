"""Compare `tinyseek dump-grads --out DIR` with the PyTorch twin, tensor by tensor.

    python3 tests/reference/twin.py check DIR [--dtype float64] [--tol 1e-4] [--quiet]

For every compared tensor it prints the largest absolute difference and that
difference relative to the tensor's largest magnitude in the twin
(max|c - t| / max|t|, the measure tests/test_ch02_ops.c's gradient checks
use); any tensor above --tol fails the check (exit status 1). Compared:
logits, loss, the gradient of every parameter, the last hidden state and the
gradients of an open-path loss (per-token weighted cross-entropy + a loss on
the hidden state + half the balance loss), the KV-cache decode logits,
and an AdamW run on the same batch (loss and gradient norm of each step, the
loss after it, every weight at the end); and chapter 8's GRPO loss on given
rollouts (three settings: loss, statistics and every gradient); and chapter 9's
distillation loss on given teacher logits (three settings, both KL directions:
loss, its parts and every gradient).

The AdamW run uses the ε that dump-grads wrote in its metadata (1e-3 by
default, see src/cli/cmd_dump.c: with the training default 1e-8, Adam's
scale-free step turns a float32 rounding difference of a near-zero gradient
into a visible difference of the weights).

The twin runs in float64 by default, so the differences are tinyseek's
float32 rounding, not the sum of two programs' roundings.
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
import twin  # noqa: E402


class Report:
    def __init__(self, tol, quiet):
        self.tol, self.quiet, self.rows, self.failed = tol, quiet, [], []

    def compare(self, name, c, t, tol=None):
        tol = self.tol if tol is None else tol
        c = np.asarray(c, dtype=np.float64)
        t = np.asarray(t, dtype=np.float64)
        if c.shape != t.shape:
            self.failed.append(name)
            print(f"  {name}: shape {c.shape} in tinyseek, {t.shape} in the twin  FAIL")
            return
        diff = np.abs(c - t)
        max_abs = float(diff.max()) if diff.size else 0.0
        scale = float(np.abs(t).max()) if t.size else 0.0
        rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else float("inf"))
        if not np.all(np.isfinite(c)):
            rel = float("inf")
        ok = rel <= tol
        self.rows.append((name, c.shape, max_abs, scale, rel, ok, tol))
        if not ok:
            self.failed.append(name)

    def print(self, title):
        if not self.rows:
            return
        print(title)
        print(f"  {'tensor':<52} {'shape':>14} {'max|abs err|':>12} {'max|twin|':>10} {'rel err':>9}")
        for name, shape, max_abs, scale, rel, ok, tol in self.rows:
            if self.quiet and ok:
                continue
            s = "x".join(str(d) for d in shape) or "1"
            print(f"  {name:<52} {s:>14} {max_abs:12.3e} {scale:10.3e} {rel:9.2e}{'' if ok else f'  FAIL (> {tol:g})'}")
        worst = max(self.rows, key=lambda r: r[4] / r[6])
        print(f"  worst: {worst[0]} {worst[4]:.2e} (tolerance {worst[6]:g})")
        self.rows = []


def main(argv):
    ap = argparse.ArgumentParser(prog="twin.py check")
    ap.add_argument("dir", help="folder written by tinyseek dump-grads")
    ap.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    ap.add_argument("--tol", type=float, default=1e-4, help="largest relative error allowed per tensor")
    ap.add_argument("--quiet", action="store_true", help="print only failing tensors and the summary lines")
    a = ap.parse_args(argv)
    dtype = getattr(torch, a.dtype)
    torch.manual_seed(0)
    dump, meta = st.load(os.path.join(a.dir, "dump.safetensors"))
    model = twin.load_model(a.dir, dtype)
    cfg = model.cfg
    tokens = torch.from_numpy(dump["tokens"].astype(np.int64))
    targets = torch.from_numpy(dump["targets"].astype(np.int64))
    B, T = tokens.shape
    kinds = sorted({twin.attention_kind(cfg)} | {twin.ffn_kind(cfg, l) for l in range(cfg.num_hidden_layers)})
    print(f"crosscheck {a.dir}: {cfg.model_type} ({', '.join(kinds)}), batch {B}x{T}, twin in {a.dtype}, "
          f"tolerance {a.tol:g} relative to each tensor's largest value"
          + (f"; tinyseek perturbed {meta['perturbed']}" if meta.get("perturbed") else ""))
    rep = Report(a.tol, a.quiet)
    failed = []

    # forward and backward
    logits, loss = model(tokens, targets)
    loss.backward()
    rep.compare("logits", dump["logits"], logits.detach().reshape(B * T, -1).numpy())
    rep.compare("loss", dump["loss"], np.array([loss.item()]))
    for name, p in model.named_parameters():
        g = p.grad.numpy() if p.grad is not None else np.zeros(tuple(p.shape))
        rep.compare("grad." + name, dump["grad." + name], g)
    missing = [k[5:] for k in dump if k.startswith("grad.") and k[5:] not in dict(model.named_parameters())]
    if missing:
        print(f"  tinyseek has gradients of tensors the twin does not: {missing}")
        failed += missing
    failed += rep.failed
    rep.failed = []
    rep.print("forward and backward:")

    # the open path: a weighted cross-entropy, a loss on the hidden state, half the balance loss
    if "open.loss" in dump:
        model = twin.load_model(a.dir, dtype)
        open_logits = model(tokens).reshape(B * T, -1)
        hidden = model.hidden.reshape(B * T, -1)
        w = torch.from_numpy(dump["open.weights"].astype(np.float64)).to(dtype)
        r = torch.from_numpy(dump["open.hidden_coef"].astype(np.float64)).to(dtype)
        flat = targets.reshape(-1)
        ce = torch.nn.functional.cross_entropy(open_logits, flat, ignore_index=twin.IGNORE, reduction="none")
        aux = sum(block.mlp.aux_loss for block in model.main_blocks())
        open_loss = (w * ce).sum() / (flat != twin.IGNORE).sum() + (r * hidden).sum() + 0.5 * aux
        open_loss.backward()
        rep.compare("hidden", dump["hidden"], hidden.detach().numpy())
        rep.compare("open.loss", dump["open.loss"], np.array([open_loss.item()]))
        for name, p in model.named_parameters():
            g = p.grad.numpy() if p.grad is not None else np.zeros(tuple(p.shape))
            rep.compare("open.grad." + name, dump["open.grad." + name], g)
        failed += rep.failed
        rep.failed = []
        rep.print("the open path (weighted cross-entropy + a loss on the hidden state + aux/2):")

    # multi-token prediction (chapter 6): L_main + (lambda/D) sum_k L_k + balance losses, every depth's logits
    if "mtp.loss" in dump:
        model = twin.load_model(a.dir, dtype)
        lam, D = float(dump["mtp.lambda"][0]), cfg.num_nextn_predict_layers
        main_logits, main_loss = model(tokens, targets)  # main cross-entropy + the main layers' balance losses
        depth_logits, mtp_aux = model.mtp(tokens, model.hidden)
        depth_losses = []
        for k, lk in enumerate(depth_logits, start=1):
            depth_losses.append(torch.nn.functional.cross_entropy(
                lk.reshape(-1, lk.shape[-1]), targets[:, k:].reshape(-1), ignore_index=twin.IGNORE))
            rep.compare(f"mtp.logits.{k}", dump[f"mtp.logits.{k}"], lk.detach().reshape(-1, lk.shape[-1]).numpy())
        mtp_loss = main_loss + lam / D * sum(depth_losses) + mtp_aux
        mtp_loss.backward()
        rep.compare("mtp.depth_loss", dump["mtp.depth_loss"], np.array([x.item() for x in depth_losses[:8]]))
        rep.compare("mtp.loss", dump["mtp.loss"], np.array([mtp_loss.item()]))
        for name, p in model.named_parameters():
            g = p.grad.numpy() if p.grad is not None else np.zeros(tuple(p.shape))
            rep.compare("mtp.grad." + name, dump["mtp.grad." + name], g)
        failed += rep.failed
        rep.failed = []
        rep.print("multi-token prediction (%d modules, lambda %g): each depth's logits, the loss, every gradient:"
                  % (D, lam))
        model = twin.load_model(a.dir, dtype)

    # KV-cache decode of sequence 0 (prefill P tokens, then teacher-forced steps)
    P = int(meta.get("prefill", T // 2))
    with torch.no_grad():
        cache = twin.KVCache(cfg.num_hidden_layers, T)
        rows = [model(tokens[:1, :P], cache=cache, start=0)[0, -1]]
        for t in range(P, T):
            rows.append(model(tokens[:1, t:t + 1], cache=cache, start=t)[0, -1])
        dec = torch.stack(rows).numpy()
    rep.compare("decode.logits", dump["decode.logits"], dec)
    if "decode_naive.logits" in dump:  # MLA: tinyseek's naive cache too (the twin decodes absorbed)
        rep.compare("decode_naive.logits", dump["decode_naive.logits"], dec)
    rep.compare("decode.logits vs the twin's own forward", dec, logits.detach()[0, P - 1:].numpy())
    failed += rep.failed
    rep.failed = []
    rep.print("KV-cache decode (prefill %d, %d steps):" % (P, T - P))

    # AdamW on the same batch: PyTorch's AdamW, decay only on tensors of 2+ dims
    steps = int(meta.get("steps", 0))
    if steps > 0:
        model = twin.load_model(a.dir, dtype)
        params = [p for p in model.parameters() if p.requires_grad]
        groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": float(meta["weight_decay"])},
                  {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
        opt = torch.optim.AdamW(groups, lr=float(meta["lr"]), betas=(float(meta["beta1"]), float(meta["beta2"])),
                                eps=float(meta["eps"]))
        clip = float(meta["clip"])
        losses, norms = [], []
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            _, l = model(tokens, targets)
            l.backward()
            # tinyseek's optimizer is one flat loop over every parameter: a routed expert that no
            # token chose gets a zero gradient, so its moments decay and weight decay still applies.
            # PyTorch's AdamW skips a parameter whose .grad is None; give it the zeros instead.
            for p in params:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
            # tinyseek's grad_clip: scale by clip/norm when the norm exceeds clip
            norm = torch.sqrt(sum((p.grad.double() ** 2).sum() for p in params if p.grad is not None))
            if clip > 0 and norm > clip:
                for p in params:
                    if p.grad is not None:
                        p.grad.mul_((clip / norm).to(p.grad.dtype))
            opt.step()
            losses.append(l.item())
            norms.append(norm.item())
        with torch.no_grad():
            _, final = model(tokens, targets)
        print("AdamW, %d steps at lr %g (loss before each step):" % (steps, float(meta["lr"])))
        print("  step " + " ".join(f"{i + 1:>9d}" for i in range(steps)))
        print("  C    " + " ".join(f"{x:9.6f}" for x in dump["adamw.loss"]))
        print("  twin " + " ".join(f"{x:9.6f}" for x in losses))
        rep.compare("adamw.loss", dump["adamw.loss"], np.array(losses))
        rep.compare("adamw.grad_norm", dump["adamw.grad_norm"], np.array(norms))
        rep.compare("adamw.final_loss", dump["adamw.final_loss"], np.array([final.item()]))
        for name, p in model.named_parameters():
            rep.compare("final." + name, dump["final." + name], p.detach().numpy())
        failed += rep.failed
        rep.failed = []
        rep.print("AdamW trajectory and final weights:")

    failed += check_grpo(rep, dump, a.dir, dtype)
    failed += check_kd(rep, dump, a.dir, dtype)

    if failed:
        print(f"crosscheck {a.dir}: FAILED: {len(failed)} tensor(s) beyond tolerance: {', '.join(failed[:8])}"
              + (" ..." if len(failed) > 8 else ""))
        return 1
    print(f"crosscheck {a.dir}: OK")
    return 0


def check_grpo(rep, dump, folder, dtype):
    """Chapter 8: GRPO on the rollouts dump-grads wrote (grpo.*), one fresh twin per setting, loss and
    statistics and the gradient of every parameter. Returns the names of the tensors that failed."""
    if "grpo.tokens" not in dump:
        return []
    as_t = lambda name: torch.from_numpy(dump[name].astype(np.float64))
    tokens, targets = as_t("grpo.tokens").long(), as_t("grpo.targets").long()
    rewards, old_logp, ref_logp = as_t("grpo.rewards").to(dtype), as_t("grpo.old_logp").to(dtype), \
        as_t("grpo.ref_logp").to(dtype)
    failed = []
    for setting in ("seq", "tok", "const"):
        if f"grpo.{setting}.loss" not in dump:
            continue
        P, G, eps_low, eps_high, beta, adv_eps, scale_by_std, norm, max_len, drop = \
            [float(x) for x in dump[f"grpo.{setting}.settings"]]
        model = twin.load_model(folder, dtype)
        logits = model(tokens)
        loss, (clip_frac, kl, zero_var, entropy), regimes = twin.grpo_loss(
            logits, targets, rewards, old_logp, ref_logp, int(G), eps_low, eps_high, beta, adv_eps,
            bool(scale_by_std), int(norm), max_len, bool(drop))
        loss.backward()
        rep.compare(f"grpo.{setting}.loss", dump[f"grpo.{setting}.loss"], np.array([loss.item()]))
        c_stats = dump[f"grpo.{setting}.stats"]
        rep.compare(f"grpo.{setting}.clip_frac", c_stats[0:1], np.array([clip_frac.item()]))
        rep.compare(f"grpo.{setting}.kl", c_stats[1:2], np.array([float(kl)]))
        rep.compare(f"grpo.{setting}.zero_var_frac", c_stats[2:3], np.array([zero_var.item()]))
        rep.compare(f"grpo.{setting}.entropy", c_stats[3:4], np.array([entropy.item()]))
        for name, p in model.named_parameters():
            g = p.grad.numpy() if p.grad is not None else np.zeros(tuple(p.shape))
            rep.compare(f"grpo.{setting}.grad." + name, dump[f"grpo.{setting}.grad." + name], g)
        failed += rep.failed
        rep.failed = []
        rep.print(f"GRPO on given rollouts, {setting} ({int(P)} groups of {int(G)}, eps {eps_low:g}/{eps_high:g}, "
                  f"beta {beta:g}, clip fraction {clip_frac.item():.3f}):")
        # A comparison only tests the cases its data reaches: each setting must have tokens clipped on both
        # sides, a KL that is not 0 when beta > 0, and with clip-higher tokens inside its window.
        missing = [what for what, ok in (("a token clipped below (A < 0)", regimes["low"] > 0),
                                         ("a token clipped above (A > 0)", regimes["high"] > 0),
                                         ("a KL term (k3 > 0)", beta == 0 or float(kl) > 0),
                                         ("a token in clip-higher's window", eps_high <= eps_low or regimes["window"] > 0))
                   if not ok]
        print(f"  covers: {regimes['low']} token(s) clipped below, {regimes['high']} above, "
              f"{regimes['window']} in (1+eps_low, 1+eps_high]" + (f"; MISSING {', '.join(missing)}" if missing else ""))
        if missing:
            failed.append(f"grpo.{setting}.coverage")
    return failed


def check_kd(rep, dump, folder, dtype):
    """Chapter 9: the distillation loss on the dump's batch under the teacher logits dump-grads wrote (kd.*),
    one fresh twin per setting: loss, its parts, the gradient of every parameter. Returns the failed names."""
    if "kd.teacher_logits" not in dump:
        return []
    tokens = torch.from_numpy(dump["tokens"].astype(np.int64))
    targets = torch.from_numpy(dump["targets"].astype(np.int64)).reshape(-1)
    teacher = torch.from_numpy(dump["kd.teacher_logits"].astype(np.float64)).to(dtype)
    B, T = tokens.shape
    failed = []
    for setting in ("fwd", "rev", "soft"):
        if f"kd.{setting}.loss" not in dump:
            continue
        alpha, temperature, reverse = [float(x) for x in dump[f"kd.{setting}.settings"]]
        model = twin.load_model(folder, dtype)
        logits = model(tokens).reshape(B * T, -1)
        aux = sum(block.mlp.aux_loss for block in model.main_blocks())  # the student's balance loss, weight 1
        loss, (ce, kl, agree) = twin.kd_loss(logits, teacher, targets, alpha, temperature, bool(reverse))
        (loss + aux).backward()
        rep.compare(f"kd.{setting}.loss", dump[f"kd.{setting}.loss"], np.array([(loss + aux).item()]))
        c_stats = dump[f"kd.{setting}.stats"]
        rep.compare(f"kd.{setting}.ce", c_stats[0:1], np.array([ce.item()]))
        rep.compare(f"kd.{setting}.kl", c_stats[1:2], np.array([kl.item()]))
        rep.compare(f"kd.{setting}.agree", c_stats[2:3], np.array([agree.item()]))
        for name, p in model.named_parameters():
            g = p.grad.numpy() if p.grad is not None else np.zeros(tuple(p.shape))
            rep.compare(f"kd.{setting}.grad." + name, dump[f"kd.{setting}.grad." + name], g)
        failed += rep.failed
        rep.failed = []
        rep.print(f"logit distillation on given teacher logits, {setting} ({'reverse' if reverse else 'forward'} KL, "
                  f"alpha {alpha:g}, T {temperature:g}, KL {kl.item():.4f}):")
    return failed
