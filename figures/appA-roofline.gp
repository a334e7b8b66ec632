# Appendix A: the roofline of MLA decode attention. Attainable TFLOP/s =
# min(peak compute, bandwidth x arithmetic intensity), for the published peaks
# of an H200 and an H800 (SXM; dense, no sparsity), and the arithmetic
# intensity of the decode step for each shape as a vertical line:
#     intensity = flops / bytes = 2·H·q·(LAT + dc) / (LAT · bytes per element)
# (H query heads and q query tokens per step share each cached row of LAT =
# dc + dr elements; scores cost LAT multiply-adds per head and position, the
# weighted sum dc). Measured points are drawn only when runs/appA/results.csv
# exists (make appA, on a machine with a GPU); none has been measured yet.
#
# optional: the measured points need a GPU (make appA); the lines need nothing
# made-by: make appA

# Published peaks (NVIDIA's H200 and H800 SXM data sheets): HBM bandwidth in TB/s,
# dense BF16 tensor-core and FP32 CUDA-core throughput in TFLOP/s.
bw_h200 = 4.8
bw_h800 = 3.35
bf16_peak = 989.0
fp32_peak = 67.0
roof(bw, peak, x) = (bw * x < peak) ? bw * x : peak

# Arithmetic intensity (flop/byte) of a shape: heads, query tokens per step, latent, rope, bytes per element.
ai(H, q, dc, dr, b) = 2.0 * H * q * (dc + dr + dc) / ((dc + dr) * b)
x_ch04 = ai(8, 1, 64, 8, 4)
x_tp16 = ai(16, 1, 512, 64, 2)
x_v3_f32 = ai(128, 1, 512, 64, 4)
x_v3_bf16 = ai(128, 1, 512, 64, 2)
x_v3_mtp = ai(128, 2, 512, 64, 2)

set title "Roofline of MLA decode attention (appendix A)"
set logscale xy
set xrange [1:2000]
set yrange [0.1:3000]
set xlabel "arithmetic intensity (flop per byte read)"
set ylabel "attainable TFLOP/s"
set grid xtics ytics mxtics mytics lc rgb "#eeeeee"
set border 3
set xtics nomirror
set ytics nomirror
set key top left Left reverse samplen 2 opaque
set samples 1000

# the shapes: dashed vertical lines, labelled along the bottom
set style line 9 lc rgb "#999999" dt 2 lw 1
do for [x in sprintf("%g %g %g %g %g", x_ch04, x_tp16, x_v3_f32, x_v3_bf16, x_v3_mtp)] {
    set arrow from x+0, graph 0 to x+0, graph 1 nohead ls 9
}
set label 1 "chapter 4, fp32" at x_ch04, 0.16 rotate by 90 offset -0.8, 0 font ",9"
set label 2 "V3, 16 heads/GPU, bf16" at x_tp16, 0.16 rotate by 90 offset -0.8, 0 font ",9"
set label 3 "V3, 128 heads, fp32" at x_v3_f32, 0.16 rotate by 90 offset -0.8, 0 font ",9"
set label 4 "V3, 128 heads, bf16" at x_v3_bf16, 0.16 rotate by 90 offset -0.8, 0 font ",9"
set label 5 "V3, 128 heads, bf16, 2 tokens/step" at x_v3_mtp, 0.16 rotate by 90 offset -0.8, 0 font ",9"

results = "runs/appA/results.csv"
have_results = system("test -f " . results . " && echo 1 || echo 0") + 0
set datafile separator comma
if (have_results) {
    plot roof(bw_h200, bf16_peak, x) lw 2 lc rgb "#d95f02" title "H200, BF16 tensor cores", \
         roof(bw_h800, bf16_peak, x) lw 2 dt 3 lc rgb "#7570b3" title "H800, BF16 tensor cores", \
         roof(bw_h200, fp32_peak, x) lw 2 lc rgb "#1b9e77" title "H200, FP32 CUDA cores", \
         results skip 1 using 17:($14 / 1000.0):2 with points pt 7 ps 1.2 lc variable title "measured (colour: version)"
} else {
    plot roof(bw_h200, bf16_peak, x) lw 2 lc rgb "#d95f02" title "H200, BF16 tensor cores", \
         roof(bw_h800, bf16_peak, x) lw 2 dt 3 lc rgb "#7570b3" title "H800, BF16 tensor cores", \
         roof(bw_h200, fp32_peak, x) lw 2 lc rgb "#1b9e77" title "H200, FP32 CUDA cores"
}
