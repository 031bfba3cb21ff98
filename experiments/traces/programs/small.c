/* Input for the cc1 recording (experiments/traces/README.md): a small C file with a
 * little of everything a compiler works on (structs, loops, recursion, macros). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_BUCKETS 257

struct entry {
    char *key;
    long count;
    struct entry *next;
};

static struct entry *table[N_BUCKETS];

static unsigned hash(const char *s) {
    unsigned h = 2166136261u;
    while (*s) h = (h ^ (unsigned char)*s++) * 16777619u;
    return h % N_BUCKETS;
}

static void add(const char *key) {
    unsigned h = hash(key);
    for (struct entry *e = table[h]; e; e = e->next)
        if (strcmp(e->key, key) == 0) { e->count++; return; }
    struct entry *e = malloc(sizeof *e);
    e->key = strdup(key);
    e->count = 1;
    e->next = table[h];
    table[h] = e;
}

static int cmp(const void *a, const void *b) {
    const struct entry *x = *(struct entry *const *)a, *y = *(struct entry *const *)b;
    return (y->count > x->count) - (y->count < x->count);
}

static long fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

int main(int argc, char **argv) {
    char word[128];
    size_t n = 0;
    while (scanf("%127s", word) == 1) { add(word); n++; }
    struct entry **all = malloc(n * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < N_BUCKETS; i++)
        for (struct entry *e = table[i]; e; e = e->next) all[k++] = e;
    qsort(all, k, sizeof *all, cmp);
    for (size_t i = 0; i < k && i < 10; i++) printf("%ld %s\n", all[i]->count, all[i]->key);
    printf("fib(%d) = %ld\n", argc + 20, fib(argc + 20));
    (void)argv;
    return 0;
}
