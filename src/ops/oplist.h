/*
 * oplist.h — the list of ops safeinfer knows: one line per op type, X(ID, "OpType", "domain"), "" being the
 * default ONNX domain. It generates `si_op_id` (SI_OP_<ID>, then SI_OP_COUNT) and the name tables of ops.c,
 * which a static assert ties to SI_OP_COUNT.
 *
 * An op's versions (Clip before and from opset 11, Resize-10 and Resize-11+) share the op's line and id; each
 * version is its own si_op_def with the opset range it covers, in the table at the end of its family's file.
 * To add an op: a line here, and its definition in the family file (a new family: a file of its own and an
 * F(name) line in SI_OP_FAMILIES below). Devices dispatch through tables indexed by the id; a NULL entry means
 * "not supported", so nothing else has to change for them.
 *
 * Ids index tables inside one build and are stored nowhere, so a new op goes in its family's block; a future
 * out-of-process protocol that sends ids must check that both sides have the same list (as ggml-rpc does).
 */
#ifndef SI_OPLIST_H
#define SI_OPLIST_H

#define SI_OP_LIST(X)                                                                                          \
    /* unary.c: element-wise functions of one input, Cast */                                                   \
    X(ABS, "Abs", "")                                                                                          \
    X(NEG, "Neg", "")                                                                                          \
    X(SQRT, "Sqrt", "")                                                                                        \
    X(EXP, "Exp", "")                                                                                          \
    X(LOG, "Log", "")                                                                                          \
    X(RECIPROCAL, "Reciprocal", "")                                                                            \
    X(FLOOR, "Floor", "")                                                                                      \
    X(CEIL, "Ceil", "")                                                                                        \
    X(ROUND, "Round", "")                                                                                      \
    X(SIGN, "Sign", "")                                                                                        \
    X(CLIP, "Clip", "")                                                                                        \
    X(RELU, "Relu", "")                                                                                        \
    X(LEAKY_RELU, "LeakyRelu", "")                                                                             \
    X(ELU, "Elu", "")                                                                                          \
    X(SELU, "Selu", "")                                                                                        \
    X(CELU, "Celu", "")                                                                                        \
    X(SIGMOID, "Sigmoid", "")                                                                                  \
    X(HARD_SIGMOID, "HardSigmoid", "")                                                                         \
    X(HARD_SWISH, "HardSwish", "")                                                                             \
    X(SWISH, "Swish", "")                                                                                      \
    X(TANH, "Tanh", "")                                                                                        \
    X(ERF, "Erf", "")                                                                                          \
    X(GELU, "Gelu", "")                                                                                        \
    X(SOFTPLUS, "Softplus", "")                                                                                \
    X(SOFTSIGN, "Softsign", "")                                                                                \
    X(MISH, "Mish", "")                                                                                        \
    X(SIN, "Sin", "")                                                                                          \
    X(COS, "Cos", "")                                                                                          \
    X(TAN, "Tan", "")                                                                                          \
    X(ASIN, "Asin", "")                                                                                        \
    X(ACOS, "Acos", "")                                                                                        \
    X(ATAN, "Atan", "")                                                                                        \
    X(SINH, "Sinh", "")                                                                                        \
    X(COSH, "Cosh", "")                                                                                        \
    X(ASINH, "Asinh", "")                                                                                      \
    X(ACOSH, "Acosh", "")                                                                                      \
    X(ATANH, "Atanh", "")                                                                                      \
    X(THRESHOLDED_RELU, "ThresholdedRelu", "")                                                                 \
    X(SHRINK, "Shrink", "")                                                                                    \
    X(IS_NAN, "IsNaN", "")                                                                                     \
    X(IS_INF, "IsInf", "")                                                                                     \
    X(NOT, "Not", "")                                                                                          \
    X(BITWISE_NOT, "BitwiseNot", "")                                                                           \
    X(CAST, "Cast", "")                                                                                        \
    X(CAST_LIKE, "CastLike", "")                                                                               \
    X(BIT_CAST, "BitCast", "")                                                                                 \
    /* binary.c: element-wise functions of two or more broadcast inputs, Where */                              \
    X(ADD, "Add", "")                                                                                          \
    X(SUB, "Sub", "")                                                                                          \
    X(MUL, "Mul", "")                                                                                          \
    X(DIV, "Div", "")                                                                                          \
    X(POW, "Pow", "")                                                                                          \
    X(MOD, "Mod", "")                                                                                          \
    X(EQUAL, "Equal", "")                                                                                      \
    X(LESS, "Less", "")                                                                                        \
    X(GREATER, "Greater", "")                                                                                  \
    X(LESS_OR_EQUAL, "LessOrEqual", "")                                                                        \
    X(GREATER_OR_EQUAL, "GreaterOrEqual", "")                                                                  \
    X(AND, "And", "")                                                                                          \
    X(OR, "Or", "")                                                                                            \
    X(XOR, "Xor", "")                                                                                          \
    X(BIT_SHIFT, "BitShift", "")                                                                               \
    X(BITWISE_AND, "BitwiseAnd", "")                                                                           \
    X(BITWISE_OR, "BitwiseOr", "")                                                                             \
    X(BITWISE_XOR, "BitwiseXor", "")                                                                           \
    X(PRELU, "PRelu", "")                                                                                      \
    X(MIN, "Min", "")                                                                                          \
    X(MAX, "Max", "")                                                                                          \
    X(SUM, "Sum", "")                                                                                          \
    X(MEAN, "Mean", "")                                                                                        \
    X(WHERE, "Where", "")                                                                                      \
    /* conv.c */                                                                                               \
    X(CONV, "Conv", "")                                                                                        \
    X(CONV_TRANSPOSE, "ConvTranspose", "")                                                                     \
    /* pool.c */                                                                                               \
    X(MAX_POOL, "MaxPool", "")                                                                                 \
    X(AVERAGE_POOL, "AveragePool", "")                                                                         \
    X(LP_POOL, "LpPool", "")                                                                                   \
    X(GLOBAL_AVERAGE_POOL, "GlobalAveragePool", "")                                                            \
    X(GLOBAL_MAX_POOL, "GlobalMaxPool", "")                                                                    \
    X(GLOBAL_LP_POOL, "GlobalLpPool", "")                                                                      \
    /* norm.c */                                                                                               \
    X(BATCH_NORMALIZATION, "BatchNormalization", "")                                                           \
    X(INSTANCE_NORMALIZATION, "InstanceNormalization", "")                                                     \
    X(LAYER_NORMALIZATION, "LayerNormalization", "")                                                           \
    X(GROUP_NORMALIZATION, "GroupNormalization", "")                                                           \
    X(RMS_NORMALIZATION, "RMSNormalization", "")                                                               \
    X(LP_NORMALIZATION, "LpNormalization", "")                                                                 \
    X(LRN, "LRN", "")                                                                                          \
    X(MEAN_VARIANCE_NORMALIZATION, "MeanVarianceNormalization", "")                                           \
    /* llm_norm.c: transformer norms and GELUs (ONNX Runtime contrib ops; SimplifiedLayerNormalization is */   \
    /* registered by ORT in the default domain) */                                                             \
    X(SIMPLIFIED_LAYER_NORMALIZATION, "SimplifiedLayerNormalization", "")                                      \
    X(SKIP_LAYER_NORMALIZATION, "SkipLayerNormalization", "com.microsoft")                                     \
    X(SKIP_SIMPLIFIED_LAYER_NORMALIZATION, "SkipSimplifiedLayerNormalization", "com.microsoft")                \
    X(EMBED_LAYER_NORMALIZATION, "EmbedLayerNormalization", "com.microsoft")                                   \
    X(FAST_GELU, "FastGelu", "com.microsoft")                                                                  \
    X(BIAS_GELU, "BiasGelu", "com.microsoft")                                                                  \
    X(QUICK_GELU, "QuickGelu", "com.microsoft")                                                                \
    /* gemm.c */                                                                                               \
    X(GEMM, "Gemm", "")                                                                                        \
    X(MATMUL, "MatMul", "")                                                                                    \
    /* nbits.c: block-quantized weights */                                                                     \
    X(MATMUL_NBITS, "MatMulNBits", "com.microsoft")                                                            \
    /* quant.c: linear quantization and integer products */                                                    \
    X(QUANTIZE_LINEAR, "QuantizeLinear", "")                                                                   \
    X(DEQUANTIZE_LINEAR, "DequantizeLinear", "")                                                               \
    X(DYNAMIC_QUANTIZE_LINEAR, "DynamicQuantizeLinear", "")                                                    \
    X(MATMUL_INTEGER, "MatMulInteger", "")                                                                     \
    X(CONV_INTEGER, "ConvInteger", "")                                                                         \
    X(QLINEAR_MATMUL, "QLinearMatMul", "")                                                                     \
    X(QLINEAR_CONV, "QLinearConv", "")                                                                         \
    /* qlinear_ms.c: com.microsoft QOperator ops (ONNX Runtime's quantize_static, int8 model-zoo models) */    \
    X(QLINEAR_ADD, "QLinearAdd", "com.microsoft")                                                              \
    X(QLINEAR_MUL, "QLinearMul", "com.microsoft")                                                              \
    X(QLINEAR_SIGMOID, "QLinearSigmoid", "com.microsoft")                                                      \
    X(QLINEAR_LEAKY_RELU, "QLinearLeakyRelu", "com.microsoft")                                                 \
    X(QLINEAR_CONCAT, "QLinearConcat", "com.microsoft")                                                        \
    X(QLINEAR_GLOBAL_AVERAGE_POOL, "QLinearGlobalAveragePool", "com.microsoft")                                \
    X(QLINEAR_AVERAGE_POOL, "QLinearAveragePool", "com.microsoft")                                             \
    X(QLINEAR_SOFTMAX, "QLinearSoftmax", "com.microsoft")                                                      \
    X(QGEMM, "QGemm", "com.microsoft")                                                                         \
    /* rnn.c: recurrent layers */                                                                              \
    X(LSTM, "LSTM", "")                                                                                        \
    X(GRU, "GRU", "")                                                                                          \
    X(RNN, "RNN", "")                                                                                          \
    /* einsum.c */                                                                                             \
    X(EINSUM, "Einsum", "")                                                                                    \
    /* softmax.c */                                                                                            \
    X(SOFTMAX, "Softmax", "")                                                                                  \
    X(LOG_SOFTMAX, "LogSoftmax", "")                                                                           \
    X(HARDMAX, "Hardmax", "")                                                                                  \
    /* loss.c: training losses */                                                                              \
    X(NEGATIVE_LOG_LIKELIHOOD_LOSS, "NegativeLogLikelihoodLoss", "")                                           \
    X(SOFTMAX_CROSS_ENTROPY_LOSS, "SoftmaxCrossEntropyLoss", "")                                               \
    /* seqmodel.c: linear attention, causal convolution with state, flex attention */                          \
    X(LINEAR_ATTENTION, "LinearAttention", "")                                                                 \
    X(CAUSAL_CONV_WITH_STATE, "CausalConvWithState", "")                                                       \
    X(FLEX_ATTENTION, "FlexAttention", "ai.onnx.preview")                                                      \
    /* window.c: signal windows, mel filter bank */                                                            \
    X(HANN_WINDOW, "HannWindow", "")                                                                           \
    X(HAMMING_WINDOW, "HammingWindow", "")                                                                     \
    X(BLACKMAN_WINDOW, "BlackmanWindow", "")                                                                   \
    X(MEL_WEIGHT_MATRIX, "MelWeightMatrix", "")                                                                \
    /* training.c: optimizers (ai.onnx.preview.training) */                                                    \
    X(ADAGRAD, "Adagrad", "ai.onnx.preview.training")                                                          \
    X(MOMENTUM, "Momentum", "ai.onnx.preview.training")                                                        \
    X(ADAM, "Adam", "ai.onnx.preview.training")                                                                \
    /* tree.c: tree ensembles (ai.onnx.ml) */                                                                  \
    X(TREE_ENSEMBLE, "TreeEnsemble", "ai.onnx.ml")                                                             \
    /* attention.c: scaled dot-product attention */                                                            \
    X(ATTENTION, "Attention", "")                                                                              \
    X(MULTI_HEAD_ATTENTION, "MultiHeadAttention", "com.microsoft")                                             \
    X(MS_ATTENTION, "Attention", "com.microsoft")                                                              \
    /* gqa.c: attention with a KV cache, rotary embeddings */                                                  \
    X(GROUP_QUERY_ATTENTION, "GroupQueryAttention", "com.microsoft")                                           \
    X(ROTARY_EMBEDDING, "RotaryEmbedding", "")                                                                 \
    X(MS_ROTARY_EMBEDDING, "RotaryEmbedding", "com.microsoft")                                                 \
    /* moe.c: mixture of experts */                                                                            \
    X(MOE, "MoE", "com.microsoft")                                                                             \
    X(QMOE, "QMoE", "com.microsoft")                                                                           \
    /* dropout.c */                                                                                            \
    X(DROPOUT, "Dropout", "")                                                                                  \
    /* resize.c */                                                                                             \
    X(RESIZE, "Resize", "")                                                                                    \
    X(UPSAMPLE, "Upsample", "")                                                                                \
    /* sample.c: sampling at computed positions, image/column rearrangements */                                \
    X(GRID_SAMPLE, "GridSample", "")                                                                           \
    X(AFFINE_GRID, "AffineGrid", "")                                                                           \
    X(ROI_ALIGN, "RoiAlign", "")                                                                               \
    X(COL2IM, "Col2Im", "")                                                                                    \
    X(DEFORM_CONV, "DeformConv", "")                                                                           \
    /* pad.c */                                                                                                \
    X(PAD, "Pad", "")                                                                                          \
    /* reduce.c: reductions along axes */                                                                      \
    X(REDUCE_MEAN, "ReduceMean", "")                                                                           \
    X(REDUCE_SUM, "ReduceSum", "")                                                                             \
    X(REDUCE_MAX, "ReduceMax", "")                                                                             \
    X(REDUCE_MIN, "ReduceMin", "")                                                                             \
    X(REDUCE_PROD, "ReduceProd", "")                                                                           \
    X(REDUCE_L1, "ReduceL1", "")                                                                               \
    X(REDUCE_L2, "ReduceL2", "")                                                                               \
    X(REDUCE_SUM_SQUARE, "ReduceSumSquare", "")                                                                \
    X(REDUCE_LOG_SUM, "ReduceLogSum", "")                                                                      \
    X(REDUCE_LOG_SUM_EXP, "ReduceLogSumExp", "")                                                               \
    X(ARG_MAX, "ArgMax", "")                                                                                   \
    X(ARG_MIN, "ArgMin", "")                                                                                   \
    X(TOP_K, "TopK", "")                                                                                       \
    X(CUM_SUM, "CumSum", "")                                                                                   \
    X(CUM_PROD, "CumProd", "")                                                                                 \
    /* layout.c: same elements, another shape or order */                                                      \
    X(RESHAPE, "Reshape", "")                                                                                  \
    X(TRANSPOSE, "Transpose", "")                                                                              \
    X(CONCAT, "Concat", "")                                                                                    \
    X(SPLIT, "Split", "")                                                                                      \
    X(SLICE, "Slice", "")                                                                                      \
    X(SQUEEZE, "Squeeze", "")                                                                                  \
    X(UNSQUEEZE, "Unsqueeze", "")                                                                              \
    X(FLATTEN, "Flatten", "")                                                                                  \
    /* rearrange.c: elements copied into a new arrangement */                                                  \
    X(EXPAND, "Expand", "")                                                                                    \
    X(TILE, "Tile", "")                                                                                        \
    X(TRILU, "Trilu", "")                                                                                      \
    X(DEPTH_TO_SPACE, "DepthToSpace", "")                                                                      \
    X(SPACE_TO_DEPTH, "SpaceToDepth", "")                                                                      \
    X(REVERSE_SEQUENCE, "ReverseSequence", "")                                                                 \
    /* gather.c: indexed reads and writes, selections */                                                       \
    X(GATHER, "Gather", "")                                                                                    \
    X(GATHER_ELEMENTS, "GatherElements", "")                                                                   \
    X(GATHER_ND, "GatherND", "")                                                                               \
    X(SCATTER_ND, "ScatterND", "")                                                                             \
    X(SCATTER_ELEMENTS, "ScatterElements", "")                                                                 \
    X(SCATTER, "Scatter", "")                                                                                  \
    X(COMPRESS, "Compress", "")                                                                                \
    X(NON_ZERO, "NonZero", "")                                                                                 \
    /* generate.c: shapes and constants, Identity */                                                           \
    X(SHAPE, "Shape", "")                                                                                      \
    X(SIZE, "Size", "")                                                                                        \
    X(CONSTANT_OF_SHAPE, "ConstantOfShape", "")                                                                \
    X(CONSTANT, "Constant", "")                                                                                \
    X(IDENTITY, "Identity", "")                                                                                \
    X(RANGE, "Range", "")                                                                                      \
    X(ONE_HOT, "OneHot", "")                                                                                   \
    X(EYE_LIKE, "EyeLike", "")                                                                                 \
    /* tensorops.c: CenterCropPad, TensorScatter, SwiGLU, Det, MaxUnpool, ml ops */                            \
    X(CENTER_CROP_PAD, "CenterCropPad", "")                                                                    \
    X(TENSOR_SCATTER, "TensorScatter", "")                                                                     \
    X(SWIGLU, "SwiGLU", "")                                                                                    \
    X(DET, "Det", "")                                                                                          \
    X(MAX_UNPOOL, "MaxUnpool", "")                                                                             \
    X(BINARIZER, "Binarizer", "ai.onnx.ml")                                                                    \
    X(ARRAY_FEATURE_EXTRACTOR, "ArrayFeatureExtractor", "ai.onnx.ml")                                          \
    X(TF_IDF_VECTORIZER, "TfIdfVectorizer", "")                                                                \
    /* unique.c */                                                                                             \
    X(UNIQUE, "Unique", "")                                                                                    \
    /* control.c: control flow (subgraphs; types and shapes only, no kernel yet) */                           \
    X(IF, "If", "")                                                                                            \
    X(LOOP, "Loop", "")                                                                                        \
    X(SCAN, "Scan", "")                                                                                        \
    X(CALL, "Call", "ai.safeinfer") /* a folded block's call (ir/fold.h), run by the executor */               \
    /* signal.c: Fourier transforms */                                                                          \
    X(DFT, "DFT", "")                                                                                          \
    X(STFT, "STFT", "")                                                                                        \
    /* detect.c: object detection */                                                                            \
    X(NON_MAX_SUPPRESSION, "NonMaxSuppression", "")

/* The family files; each defines `const si_op_table si_ops_<name>` (its si_op_def table) at its end. */
#define SI_OP_FAMILIES(F)                                                                                      \
    F(unary) F(binary) F(conv) F(pool) F(norm) F(gemm) F(einsum) F(softmax) F(dropout) F(resize) F(pad)       \
    F(quant) F(qlinear_ms) F(rnn)                                                                              \
    F(reduce) F(layout) F(rearrange) F(gather) F(generate) F(unique) F(control)                                \
    F(llm_norm) F(nbits) F(attention) F(gqa) F(moe)                                                            \
    F(signal) F(detect)                                                                                            \
    F(loss) F(sample) F(tensorops) F(seqmodel) F(window) F(training) F(tree)

#endif
