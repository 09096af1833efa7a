/* main.c - the `embedtune` command: the table of subcommands (each in src/cli/cli_*.c). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "kernels.h"

extern et_command et_cmd_encode, et_cmd_search, et_cmd_train, et_cmd_eval, et_cmd_score, et_cmd_mine,
    et_cmd_finetune, et_cmd_fuse, et_cmd_quantize, et_cmd_merge, et_cmd_index;

static et_command *commands[] = {&et_cmd_encode, &et_cmd_search, &et_cmd_train, &et_cmd_eval, &et_cmd_score, &et_cmd_mine,
                               &et_cmd_finetune, &et_cmd_fuse, &et_cmd_quantize, &et_cmd_merge, &et_cmd_index};
#define NCMD (int)(sizeof commands / sizeof commands[0])

static void main_help(FILE *f) {
    fprintf(f, "embedtune %s - sentence-embedding encoder and trainer (SIMD: %s)\n\n"
               "usage: embedtune <command> [options]     (embedtune <command> --help for its options)\n\ncommands:\n",
            ET_VERSION, et_simd_name());
    for (int i = 0; i < NCMD; i++) fprintf(f, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(f, "  %-10s %s\n", "version", "print the version");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        main_help(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
        printf("embedtune %s (%s)\n", ET_VERSION, et_simd_name());
        return 0;
    }
    for (int i = 0; i < NCMD; i++) {
        if (strcmp(argv[1], commands[i]->name)) continue;
        int r = et_cli_parse(commands[i], argc - 2, argv + 2);
        if (r) return r > 0 ? 0 : 2;
        return commands[i]->run(commands[i]->opts, commands[i]->nopts);
    }
    fprintf(stderr, "embedtune: unknown command '%s'\n\n", argv[1]);
    main_help(stderr);
    return 2;
}
