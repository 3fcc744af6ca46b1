/*
 * help.c — the CLI's help: one entry per command (synopsis and details), `safeinfer --help`,
 * `safeinfer COMMAND --help`, `safeinfer --version`, and the configuration keys (flags of `run` and
 * `config --list`), which come from the library's table (si_config_key) rather than a copy here.
 */
#include "cli.h"

#include <string.h>

typedef struct command_help {
    const char *name, *synopsis, *details;
} command_help;

static const command_help commands[] = {
    {"run",
     "run MODEL [--devices LIST] [--shape NAME=DIMS|DIM=N]... [--input NAME=FILE.npy|random[:SEED]]...\n"
     "            [--output-dir DIR] [--repeat N] [--requests M] [--rtol X] [--atol X] [--report FILE.json]\n"
     "            [--CONFIG-KEY VALUE]...",
     "Run the model and print each output's name, type, shape and a summary.\n"
     "  --devices OCL,CPU     priority list; each part of the model runs on the first device that can take it\n"
     "                        and fails over to the next one when a device fails (default AUTO)\n"
     "  --shape NAME=1x3x224x224 fixes an input's shape; --shape batch=1 fixes a symbolic dimension\n"
     "  --input NAME=FILE.npy | NAME=random[:SEED]   inputs not given are random (seed 0 + input index)\n"
     "  --output-dir DIR      write DIR/<output>.npy\n"
     "  --profile             time each step the devices run and print the table (as bench --profile)\n"
     "  --repeat N            N inferences per request (default 1)\n"
     "  --requests M          M requests on M threads over one compiled model (at most 256); every request\n"
     "                        runs the same inputs and their outputs must agree: the largest difference must\n"
     "                        not exceed --rtol (default 1e-4) times the output's scale (its largest\n"
     "                        magnitude) plus --atol (default 1e-7), since requests may end on different\n"
     "                        devices after a failover; integer outputs must be equal\n"
     "  --report FILE.json    write compile attempts, events and counters as JSON\n"
     "Failover events are printed as they happen, then a one-line summary. Every configuration key is also\n"
     "a flag (KEY with '-' for '_'):\n"},
    {"inspect",
     "inspect MODEL [--devices LIST [--avoid RULES] [--set KEY=VALUE]...] [--shape NAME=DIMS|DIM=N]...\n"
     "              [--dot FILE.dot [--report FILE.json]]",
     "Print the model's inputs, outputs, opsets, op histogram and parameters. With --devices, the submodels\n"
     "it is cut into: their device and fallbacks, their ops, the tensors that cross between them, and why\n"
     "nodes did not go to earlier devices (nothing is compiled).\n"
     "  --dot FILE.dot        write the partition as a Graphviz graph: one cluster per submodel, coloured by\n"
     "                        device, fallbacks in its label, the tensors that cross between submodels on the\n"
     "                        edges (render: dot -Tsvg FILE.dot -o FILE.svg)\n"
     "  --report FILE.json    with --dot: overlay a `run --report` file (the device each submodel ended on,\n"
     "                        its failovers)\n"
     "  --avoid RULES         placement rules as the configuration key avoid (Op:Softmax/OCL,Node:NAME/OCL)\n"
     "  --set KEY=VALUE       another compile property that changes the cut: fold=off, hfa_tile=N, moe_experts=on\n"},
    {"check-onnx",
     "check-onnx PATH... [--devices LIST] [--filter REGEX] [--json FILE] [--rtol X] [--atol X]",
     "Run ONNX backend test cases (folders with model.onnx and test_data_set_N/, or light_X.onnx with\n"
     "light_X_output_0.pb), found in the PATHs and the folders below them, and compare the outputs\n"
     "(|got - expected| <= atol + rtol * |expected|, defaults 1e-3 and 1e-7). Prints PASS, FAIL (largest\n"
     "error or the message) or SKIP (what the device does not support) per case, then the counts.\n"
     "Exit status 1 when a case fails, when a PATH holds no test case, or when --filter selects none.\n"},
    {"compare",
     "compare DIR_A DIR_B [--rtol X] [--atol X]",
     "Compare every .npy file in DIR_A with the one of the same name in DIR_B, with check-onnx's tolerance.\n"
     "Exit status 1 when any differs or none is found.\n"},
    {"bench",
     "bench MODEL [--devices LIST] [--threads N] [--iterations N] [--warmup N] [--shape ...]...\n"
     "            [--input NAME=FILE.npy|random[:SEED]]... [--json FILE] [--profile] [--set KEY=VALUE]...\n"
     "       bench MODEL --generate P,N [--devices LIST] [--threads N] [--json FILE] [--profile] [--set KEY=VALUE]...",
     "Time compile, the first inference, then --warmup (3) untimed and --iterations (20) timed runs; print\n"
     "median / p90 / min latency, throughput, peak RSS and the devices used (threads 1).\n"
     "  --profile   also time each step the devices run (compile property profile=on) and print them sorted\n"
     "              by time: the ONNX nodes a step covers, device, kernel (oneDNN's implementation name,\n"
     "              own:NAME for the CPU device's own kernels, reference), calls, total and mean time, share;\n"
     "              a warning when reference kernels take more than 5% of a device's steps. --json gets it as\n"
     "              \"profile\". The latencies then include the step timing. With --generate: the steps of the\n"
     "              whole generation (--generate P,1: the prefill alone), printed after the table.\n"
     "  --set KEY=VALUE  any other compile property (safeinfer config --list), e.g. --set fold=off\n"
     "  --generate P,N  for a decoder with a KV cache (inputs input_ids, attention_mask, [position_ids,]\n"
     "              past_key_values.*; outputs logits, present.*, the Hugging Face / GenAI naming): compile it\n"
     "              once with its dimensions open, prefill a prompt of P tokens (from a fixed generator) over an\n"
     "              empty cache, then greedy-decode to N tokens feeding the presents back; print prefill and\n"
     "              decode tokens/s (pp and tg, as llama-bench), the decode step's median and min, compile time,\n"
     "              peak RSS, failover events and the tokens. The prefill and the steps are the inference calls\n"
     "              alone (as models/ort_generate.js times ONNX Runtime). --json adds the compiled model's report.\n"},
    {"config",
     "config --list [--markdown]",
     "List the configuration keys (compile properties; `run` takes each as a flag): what each takes, its\n"
     "default and what it does. --markdown prints the README's table.\n"},
};

static const command_help *find(const char *name) {
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(commands[i].name, name)) return &commands[i];
    return NULL;
}

void config_flag_name(const char *key, char *flag, size_t n) {
    snprintf(flag, n, "--%s", key);
    for (char *p = flag + 2; *p; p++)
        if (*p == '_') *p = '-';
}

/* The configuration keys as flags: "  --retries 0..100 (default 0)  doc", wrapped. */
static void print_config_flags(FILE *f) {
    for (int i = 0; i < si_config_num_keys(); i++) {
        si_config_key_info k;
        if (si_config_key(i, &k)) continue;
        char flag[64];
        config_flag_name(k.name, flag, sizeof flag);
        fprintf(f, "  %s %s%s%s%s\n", flag, k.values, *k.default_value ? " (default " : "", k.default_value,
                *k.default_value ? ")" : "");
        /* the doc, wrapped at ~100 columns under the flag */
        const char *p = k.doc;
        while (*p) {
            int w = 0, last_space = -1;
            while (p[w] && w < 96) {
                if (p[w] == ' ') last_space = w;
                w++;
            }
            if (p[w] && last_space > 0) w = last_space;
            fprintf(f, "        %.*s\n", w, p);
            p += w;
            while (*p == ' ') p++;
        }
    }
}

void usage(FILE *f) {
    fprintf(f, "usage: safeinfer COMMAND [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) fprintf(f, "  %s\n", commands[i].synopsis);
    fprintf(f, "\nsafeinfer COMMAND --help explains a command; safeinfer config --list lists the configuration keys;\n"
               "safeinfer --version prints the version.\n");
}

void usage_cmd(FILE *f, const char *cmd) {
    const command_help *h = find(cmd);
    if (!h) { usage(f); return; }
    fprintf(f, "usage: safeinfer %s\n", h->synopsis);
    if (f != stdout) {
        fprintf(f, "(safeinfer %s --help for details)\n", cmd);
        return;
    }
    fprintf(f, "\n%s", h->details);
    if (!strcmp(cmd, "run")) print_config_flags(f);
}

/* "|" inside a Markdown table cell must be escaped. */
static void md_cell(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '|') fputc('\\', f);
        fputc(*s, f);
    }
}

int cmd_config(int argc, char **argv) {
    bool list = false, markdown = false;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--list")) list = true;
        else if (!strcmp(argv[i], "--markdown")) markdown = true;
        else { fprintf(stderr, "safeinfer config: unknown argument '%s'\n", argv[i]); usage_cmd(stderr, "config"); return EXIT_USAGE; }
    }
    if (!list) { usage_cmd(stderr, "config"); return EXIT_USAGE; }
    if (!markdown) {
        printf("configuration keys (si_config_set; `safeinfer run --KEY VALUE` with '-' for '_'):\n");
        print_config_flags(stdout);
        return 0;
    }
    printf("| key | values | default | meaning |\n|---|---|---|---|\n");
    for (int i = 0; i < si_config_num_keys(); i++) {
        si_config_key_info k;
        if (si_config_key(i, &k)) continue;
        printf("| `%s` | `", k.name);
        md_cell(stdout, k.values);
        printf("` | %s%s%s | ", *k.default_value ? "`" : "", *k.default_value ? k.default_value : "none",
               *k.default_value ? "`" : "");
        md_cell(stdout, k.doc);
        printf(" |\n");
    }
    return 0;
}
