/* test_train_plan.c - the trainer's memory plan counts what it allocates (issue 16 item 3):
 *   1. et_train_state_bytes / et_train_plan_bytes (the up-front plan finetune and the page refuse by) equal what
 *      et_trainer_init makes (bytes_state, bytes_planned, train_n) on the tiny model for full fine-tuning, a frozen
 *      word-embedding table (a prefix: no gradient, no AdamW state), a frozen middle layer (not a prefix: the
 *      gradients stay), only the MoE parameters of a converted model, and LoRA;
 *   2. a multilingual-e5-small-shaped config (XLM-R, 12 x 384, vocabulary 250,037), the page run's settings (batch 8,
 *      1 negative, max length 128): the trainer's plan with the word embeddings frozen is below 75 % of the page's
 *      budget (the wasm32 heap, -sMAXIMUM_MEMORY=2GB, less a reserve for what the module keeps in use), and full
 *      fine-tuning's is above it (the page refuses it: bench/e5small_page.mjs);
 *   3. a run's measured peak natively: a big-vocabulary model (2 x 384, vocabulary 250,037) trained one step with the
 *      table frozen and trained; the resident memory the trainer added (peak RSS less RSS before init, the model
 *      already resident) is within 10 % of the plan less the parameters (which are counted by the plan and were
 *      resident already). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "finetune.h"
#include "hf.h"
#include "rng.h"
#include "train.h"
#include "et_test.h"

#define BASE "tests/fixtures/e2e/model"

static void check_case(const char *what, et_train_cfg c, int B) {
    et_error err = {0};
    et_bert m;
    if (et_hf_load(BASE, &m, &err)) { CHECK(0, "load: %s", err.msg); return; }
    c.batch = B; c.negatives = 0; c.total_steps = 2; c.threads = 1; c.warmup_steps = 0;
    size_t pf = 0, tf = 0, acts[4];
    size_t state = et_train_state_bytes(&c, &m.cfg, &pf, &tf);
    size_t plan = et_train_plan_bytes(&c, &m.cfg, B, 0, 1, acts, NULL);
    et_trainer tr;
    if (et_trainer_init(&tr, &c, &m, NULL, NULL, &err)) { CHECK(0, "%s: init: %s", what, err.msg); et_bert_free(&m); return; }
    CHECK(state == tr.bytes_state && tf == tr.train_n && tf == tr.opt.n && pf == m.n_params + m.n_lora,
          "%s: planned state %zu bytes (%zu params, %zu trained), made %zu (%zu params, %zu trained)", what, state, pf, tf,
          tr.bytes_state, m.n_params + m.n_lora, tr.train_n);
    CHECK(plan == tr.bytes_planned, "%s: the up-front plan %zu bytes, the trainer's %zu", what, plan, tr.bytes_planned);
    printf("%-36s params %8zu floats, trained %8zu, plan %.2f MiB\n", what, pf, tf, plan / 1048576.0);
    et_trainer_free(&tr);
    et_bert_free(&m);
}

static void test_tiny(void) {
    et_train_cfg c;
    et_train_cfg_default(&c);
    check_case("full fine-tuning", c, 4);
    c.freeze = "embeddings.word_embeddings.";
    check_case("--freeze-embeddings", c, 4);
    c.freeze = "encoder.layer.0.";
    check_case("layer 0 frozen (not a prefix)", c, 4);
    c.freeze = "embeddings.,encoder.layer.0.attention.";
    check_case("embeddings + layer 0 attention", c, 3);
    c.freeze = NULL;
    c.moe_experts = 3;
    c.train_only_moe = 1;
    check_case("MoE conversion, only MoE trained", c, 4);
    c.train_only_moe = 0;
    check_case("MoE conversion, all trained", c, 4);
    c.moe_experts = 0;
    c.lora_rank = 2;
    check_case("LoRA r 2", c, 4);
}

static et_bert_config e5_shape(int layers) {
    et_bert_config m;
    memset(&m, 0, sizeof m);
    m.vocab_size = 250037; m.hidden_size = 384; m.num_layers = layers; m.num_heads = 12; m.intermediate_size = 1536;
    m.max_position = 514; m.type_vocab_size = 1; m.layer_norm_eps = 1e-12f; m.hidden_dropout = 0.1f;
    m.attn_dropout = 0.1f; m.pad_token_id = 1; m.arch = ET_ARCH_XLMR; m.position_offset = 2; m.pooling = ET_POOL_MEAN;
    m.normalize = 1;
    return m;
}

/* the page's budget: the wasm32 heap's ceiling (CMakeLists.txt -sMAXIMUM_MEMORY=2GB) less a reserve for what the
 * module holds when finetune starts (static data, stacks, the runtime; the page frees its loaded model first:
 * wasm/embedtune.mjs, and the folder's files live in the JS file system, outside the heap) */
#define PAGE_HEAP_MIB 2048.0
#define PAGE_RESERVE_MIB 128.0

static void test_e5_page(void) {
    et_bert_config m = e5_shape(12);
    et_error err = {0};
    CHECK(et_bert_config_check(&m, &err) == ET_OK, "e5 shape: %s", err.msg);
    et_finetune_cfg fc;
    et_finetune_cfg_default(&fc);
    et_train_cfg c = fc.train;
    /* the page's run of bench/e5small_page.mjs: finetune --max-len 128 (queries 64) --batch 8 --negatives 1 */
    c.max_len_q = 64; c.max_len_d = 128;
    int B = 8, G = 1;
    size_t n = 0;
    et_bert_tensor_table(&m, NULL, 0, &n);
    double budget = PAGE_HEAP_MIB - PAGE_RESERVE_MIB;
    size_t tf_full = 0, tf_fr = 0;
    et_train_state_bytes(&c, &m, NULL, &tf_full);
    double full = et_train_plan_bytes(&c, &m, B, G, 2, NULL, NULL) / 1048576.0;
    c.freeze = ET_TRAIN_WORD_EMB_PREFIX;
    et_train_state_bytes(&c, &m, NULL, &tf_fr);
    double fr = et_train_plan_bytes(&c, &m, B, G, 2, NULL, NULL) / 1048576.0;
    /* finetune adds the dev split's best-model copy of the trained floats (and its encoding, a few hundred MiB) */
    double fr_ft = fr + tf_fr * 4.0 / 1048576.0, full_ft = full + tf_full * 4.0 / 1048576.0;
    printf("e5-small shape (%zu params), batch %d x %d negative, max length 64/128, 2 threads: train plan full %.0f MiB "
           "(+best copy %.0f), word embeddings frozen %.0f MiB (+best copy %.0f); page budget %.0f MiB\n",
           n, B, G, full, full_ft, fr, fr_ft, budget);
    CHECK(tf_full == n && tf_fr == n - (size_t)250037 * 384, "trained floats %zu / %zu", tf_full, tf_fr);
    CHECK(fr_ft < 0.75 * budget, "frozen word embeddings: %.0f MiB is not below 75 %% of the page's %.0f MiB", fr_ft, budget);
    CHECK(full_ft > budget, "full fine-tuning %.0f MiB fits the page's %.0f MiB (the test's premise)", full_ft, budget);
}

static size_t rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, res = 0;
    if (!f) return 0;
    if (fscanf(f, "%ld %ld", &pages, &res) != 2) res = 0;
    fclose(f);
    return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

static size_t peak_bytes(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (size_t)u.ru_maxrss * 1024;
}

/* one configuration in a forked child, so each peak is its own */
static void measured(const char *freeze) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        et_bert_config mc = e5_shape(2);
        et_error err = {0};
        et_bert m;
        if (et_bert_alloc(&m, &mc, &err)) { printf("alloc: %s\n", err.msg); _exit(2); }
        et_rng r;
        et_rng_seed(&r, 5);
        for (size_t i = 0; i < m.n_params; i++) m.params[i] = 0.02f * (2.0f * et_rng_uniformf(&r) - 1.0f);
        et_train_cfg c;
        et_train_cfg_default(&c);
        int B = 16, Tq = 32, Td = 128;
        c.batch = B; c.negatives = 0; c.total_steps = 2; c.threads = 1; c.warmup_steps = 0; c.max_len_q = Tq;
        c.max_len_d = Td; c.freeze = freeze;
        int32_t *qi = malloc(sizeof(int32_t) * B * (Tq + Td)), *pi = qi + B * Tq;
        for (int i = 0; i < B * (Tq + Td); i++) qi[i] = 5 + (int32_t)(et_rng_next(&r) % 250000);
        et_train_batch b = {0};
        b.B = B; b.q_ids = qi; b.Tq = Tq; b.p_ids = pi; b.Td = Td;
        size_t before = rss_bytes(), pf = 0;
        et_train_state_bytes(&c, &mc, &pf, NULL);
        et_trainer tr;
        double loss;
        if (et_trainer_init(&tr, &c, &m, NULL, NULL, &err) || et_trainer_micro(&tr, &b, 1, &loss, &err) ||
            et_trainer_update(&tr, NULL, &err) || et_trainer_micro(&tr, &b, 2, &loss, &err) ||
            et_trainer_update(&tr, NULL, &err)) { printf("train: %s\n", err.msg); _exit(2); }
        double added = (double)(peak_bytes() - before), planned = (double)(tr.bytes_planned - pf * sizeof(float));
        printf("2 x 384, V 250037, batch %d, %s: plan %.1f MiB (params %.1f), measured peak added %.1f MiB vs planned %.1f "
               "(%+.1f %%)\n", B, freeze ? "word embeddings frozen" : "all trained", tr.bytes_planned / 1048576.0,
               pf * 4.0 / 1048576.0, added / 1048576.0, planned / 1048576.0, 100.0 * (added - planned) / planned);
        fflush(stdout);
        _exit(added <= 1.10 * planned && added >= 0.90 * planned ? 0 : 1);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "measured peak within 10 %% of the plan (%s)", freeze ? freeze : "all trained");
}

int main(void) {
    test_tiny();
    test_e5_page();
    measured(NULL);
    measured("embeddings.word_embeddings.");
    return et_test_report("test_train_plan");
}
