/*
 * Appendix A's kernels on the CPU (make cuda-emu, part of make test): every
 * version of src/cuda/mla_decode.cu, compiled by g++ against cuda_emu.hpp,
 * run on small shapes and checked against the library's absorbed decode
 * exactly as the GPU harness checks them (NaN past every length, NaN in the
 * outputs before each run, an empty sequence). It tests what the kernels
 * compute and where they read and write, without a GPU; it times nothing,
 * and cannot see races that depend on a GPU's timing.
 */
#include "cuda/cuda_emu.hpp"

#include "cuda/mla_decode.cu"

// launch() of mla_decode.cu, with emu_launch() for <<<grid, block, shared>>>.
static void launch_emu(int v, const DecodeArgs &a) {
    int LAT = a.dc + a.dr, hg = group_heads(a.H, a.dc), groups = (a.H + hg - 1) / hg;
    switch (v) {
    case 1:
        emu_launch(dim3((a.B * a.H + 127) / 128), dim3(128), 0, [&] { decode_v1(a); });
        break;
    case 2:
        emu_launch(dim3(a.B * a.H), dim3(V2_THREADS), (LAT + V2_TILE + 2) * sizeof(float), [&] { decode_v2(a); });
        break;
    case 3:
        emu_launch(dim3(groups, a.B), dim3(G_THREADS), group_smem(hg, LAT, 1), [&] { decode_v3(a, hg); });
        break;
    case 4:
    case 5:
        if (v == 4)
            emu_launch(dim3(a.nsplit, groups, a.B), dim3(G_THREADS), group_smem(hg, LAT, 1), [&] { decode_v4(a, hg); });
        else
            emu_launch(dim3(a.nsplit, groups, a.B), dim3(G_THREADS), group_smem(hg, LAT, 2), [&] { decode_v5(a, hg); });
        emu_launch(dim3(a.B * a.H), dim3(128), (a.nsplit + 1) * sizeof(float), [&] { combine(a); });
        break;
    }
}

struct EmuShape {
    const char *config;
    std::vector<int> len;
    std::vector<int> splits; // versions 4 and 5 run once per entry
};

int main(void) {
    // a config with 20 heads: V3's groups of 16 leave a last group of 4
    const char *h20 = "build/cuda_emu_h20.json";
    FILE *f = fopen(h20, "w");
    if (!f) {
        fprintf(stderr, "cuda-emu: cannot write %s\n", h20);
        return 2;
    }
    fprintf(f, "{\"model_type\": \"deepseek_v3\", \"vocab_size\": 16, \"hidden_size\": 32, \"num_hidden_layers\": 1,\n"
               " \"num_attention_heads\": 20, \"num_key_value_heads\": 20, \"intermediate_size\": 8,\n"
               " \"max_position_embeddings\": 256, \"rms_norm_eps\": 1e-5, \"rope_theta\": 10000.0,\n"
               " \"q_lora_rank\": 0, \"kv_lora_rank\": 24, \"qk_nope_head_dim\": 8, \"qk_rope_head_dim\": 4,\n"
               " \"v_head_dim\": 8, \"n_routed_experts\": 0}\n");
    fclose(f);
    std::vector<EmuShape> shapes = {
        {"configs/ch04-mla.json", {100, 37, 0, 1}, {1, 3, 7}},
        {"configs/published/deepseek-v3.json", {40, 17, 0}, {1, 4}},
        {h20, {50, 33}, {2, 64}},
    };
    int failures = 0, runs = 0;
    for (const EmuShape &sh : shapes) {
        appA_shape d;
        if (appA_shape_load(&d, sh.config)) return 2;
        int B = (int)sh.len.size(), T = *std::max_element(sh.len.begin(), sh.len.end()) + 5;
        int H = d.H, dc = d.dc, dr = d.dr, LAT = dc + dr;
        std::vector<float> cache((size_t)B * T * LAT), q((size_t)B * H * LAT), ref((size_t)B * H * dc),
            ref_lse((size_t)B * H);
        uint64_t state = 12345;
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++)
                for (int k = 0; k < LAT; k++) {
                    state = state * 6364136223846793005ull + 1442695040888963407ull;
                    float u = (float)((state >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
                    cache[((size_t)b * T + t) * LAT + k] = t < sh.len[b] ? u : NAN;
                }
        if (appA_reference(sh.config, B, T, sh.len.data(), cache.data(), 99, q.data(), ref.data(), ref_lse.data()))
            return 1;
        for (int v = 1; v <= NVERSIONS; v++)
            for (int nsplit : (v >= 4 ? sh.splits : std::vector<int>{1})) {
                if (const char *why = unsupported(v, H, dc, dr, EMU_SHARED_BYTES)) {
                    printf("cuda-emu: %s v%d skipped: %s\n", sh.config, v, why);
                    continue;
                }
                // fresh outputs and workspace, NaN-filled: anything a version fails to write shows
                std::vector<float> out(ref.size(), NAN), lse(ref_lse.size(), NAN);
                std::vector<float> po((size_t)B * H * nsplit * dc, NAN), pl((size_t)B * H * nsplit, NAN);
                DecodeArgs a;
                memset(&a, 0, sizeof a);
                a.q = q.data(), a.cache = cache.data(), a.len = sh.len.data(), a.out = out.data(), a.lse = lse.data();
                a.part_out = po.data(), a.part_lse = pl.data();
                a.B = B, a.H = H, a.dc = dc, a.dr = dr, a.max_T = T, a.nsplit = nsplit, a.scale = d.scale;
                launch_emu(v, a);
                double err = rel_err(out, ref), lerr = lse_err(lse, ref_lse);
                bool ok = err <= TOLERANCE && lerr <= TOLERANCE;
                runs++;
                failures += !ok;
                if (!ok)
                    printf("cuda-emu: %s v%d (%d splits): err %.3g, lse err %.3g: WRONG\n", sh.config, v, nsplit, err,
                           lerr);
            }
    }
    remove(h20);
    printf("cuda-emu: %d kernel runs on the CPU (versions 1-%d, 3 shapes), %d disagree with the C absorbed decode\n",
           runs, NVERSIONS, failures);
    return failures ? 1 : 0;
}
