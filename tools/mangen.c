/* SPDX-License-Identifier: MIT */
/*
 * mangen: man pages (roff, man(7) macros) from the block comments of
 * mempipe's public headers. Standard C only; built and run on the build host.
 *
 *   mangen -o DIR [-t PAGE.7.in] [-e EXPORT_MACRO]
 *          { [-I INCLUDE] [-L LIB] [-P PKG] [-7] HEADER } ...
 *
 * Options before a HEADER apply to it: -I the #include name (default: the
 * path after "include/"), -L the library (default mempipe, shown as -lLIB),
 * -P the pkg-config name (default mempipe), -7 also write LIB(7) from the
 * header's file comment. Every declaration that starts with EXPORT_MACRO
 * (default MEMPIPE_EXTERN) is a public function and gets DIR/NAME.3 from the
 * block comment right above it; a public function without one is an error
 * (exit 1, nothing written). Commented typedefs of function pointers or
 * structs are shown in the pages of the functions that use them.
 * -t PAGE.7.in is copied to DIR/PAGE.7 with @VERSION@ replaced and a line
 * @FUNCTIONS@ replaced by the list of every function. The version comes from
 * the headers' #define *_VERSION_MAJOR/MINOR/PATCH.
 *
 * The comment's text is kept: blank lines separate paragraphs, lines
 * starting "- ", "* " or "N. " are list items, other indented lines are
 * kept as they are (.nf). A line starting "Returns" (up to the end of its
 * sentence) goes to RETURN VALUE, one starting "Errors:" (with its indented
 * continuation lines) to ERRORS. Mentions of known functions, name(), are
 * set in bold and listed in SEE ALSO.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HEADERS 64
#define WRAP        72

struct header {
    const char *path;
    const char *inc;
    const char *lib;
    const char *pkg;
    int overview; /* write lib(7) from filecomment */
    char *filecomment;
};

enum kind { K_FUNC, K_TYPE };

struct item {
    enum kind kind;
    int shown; /* a type whose declaration goes into SYNOPSIS */
    char *name;
    char *decl;    /* the declaration as in the source, export macro removed */
    char *comment; /* the comment's lines, frame stripped, '\n'-separated */
    char *summary;
    const struct header *h;
};

static struct header headers[MAX_HEADERS];
static int nheaders;
static struct item *items;
static size_t nitems;
static const char *export_macro = "MEMPIPE_EXTERN";
static const char *outdir;
static const char *template_path;
static long version[3] = {-1, -1, -1};
static char version_str[64];
static int failed;

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("mangen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        die("out of memory");
    return p;
}

static char *xstrndup(const char *s, size_t n)
{
    char *p = xrealloc(NULL, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

struct buf {
    char *p;
    size_t len, cap;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_addc(struct buf *b, char c)
{
    buf_add(b, &c, 1);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    struct buf b = {0};
    char chunk[4096];
    size_t n;
    if (!f)
        die("%s: cannot open", path);
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_add(&b, chunk, n);
    if (ferror(f))
        die("%s: read error", path);
    fclose(f);
    if (!b.p)
        buf_add(&b, "", 0);
    return b.p;
}

static int is_ident(int c)
{
    return isalnum(c) || c == '_';
}

/* Splits s at '\n' into a NULL-terminated array of copies. */
static char **split_lines(const char *s, int *n)
{
    char **v = NULL;
    int k = 0;
    for (;;) {
        const char *e = strchr(s, '\n');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        v = xrealloc(v, sizeof *v * (size_t)(k + 2));
        v[k++] = xstrndup(s, len);
        if (!e)
            break;
        s = e + 1;
    }
    v[k] = NULL;
    *n = k;
    return v;
}

static void free_lines(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static int indent_of(const char *s)
{
    int n = 0;
    while (s[n] == ' ')
        n++;
    return n;
}

static int blank(const char *s)
{
    return s[indent_of(s)] == '\0';
}

/* Length of a list marker ("- ", "* ", "12. ") at s, or 0. */
static int bullet_len(const char *s)
{
    int n = 0;
    if ((s[0] == '-' || s[0] == '*') && s[1] == ' ')
        n = 1;
    else {
        while (isdigit((unsigned char)s[n]))
            n++;
        if (n == 0 || n > 2 || (s[n] != '.' && s[n] != ')') || s[n + 1] != ' ')
            return 0;
        n++;
    }
    while (s[n] == ' ')
        n++;
    return n;
}

/* Collapses whitespace runs to one space, none after '(' or before ')'. */
static char *normalize(const char *s)
{
    struct buf b = {0};
    int space = 0;
    for (; *s; s++) {
        if (isspace((unsigned char)*s)) {
            space = b.len > 0;
            continue;
        }
        if (space && *s != ')' && *s != ',' && *s != ';' &&
            b.p[b.len - 1] != '(')
            buf_addc(&b, ' ');
        space = 0;
        buf_addc(&b, *s);
    }
    if (!b.p)
        buf_add(&b, "", 0);
    return b.p;
}

static const struct item *find_item(const char *name, size_t n, enum kind k)
{
    for (size_t i = 0; i < nitems; i++)
        if (items[i].kind == k && strlen(items[i].name) == n &&
            memcmp(items[i].name, name, n) == 0)
            return &items[i];
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Parsing a header                                                    */
/* ------------------------------------------------------------------ */

/* The text of a block comment without its frame: "/ *", "* /", the " * "
 * at each line start, leading and trailing blank lines. */
static char *strip_comment(const char *raw, size_t len)
{
    char *body = xstrndup(raw + 2, len - 4);
    int n;
    char **v = split_lines(body, &n);
    struct buf b = {0};
    int first = -1, last = -1;
    free(body);
    for (int i = 0; i < n; i++) {
        char *s = v[i];
        if (i > 0) {
            while (*s == ' ' || *s == '\t')
                s++;
            if (*s == '*')
                s++;
        }
        if (*s == ' ')
            s++;
        /* Trailing blanks off; tabs become spaces. */
        size_t l = strlen(s);
        while (l > 0 && isspace((unsigned char)s[l - 1]))
            l--;
        memmove(v[i], s, l);
        v[i][l] = '\0';
        if (strchr(v[i], '\t'))
            die("a tab in a comment: use spaces");
        if (!blank(v[i])) {
            if (first < 0)
                first = i;
            last = i;
        }
    }
    if (first >= 0) {
        int base = 1 << 30;
        for (int i = first; i <= last; i++)
            if (!blank(v[i]) && indent_of(v[i]) < base)
                base = indent_of(v[i]);
        for (int i = first; i <= last; i++) {
            if (!blank(v[i]))
                buf_add(&b, v[i] + base, strlen(v[i] + base));
            if (i < last)
                buf_addc(&b, '\n');
        }
    }
    if (!b.p)
        buf_add(&b, "", 0);
    free_lines(v, n);
    return b.p;
}

static struct item *new_item(void)
{
    items = xrealloc(items, sizeof *items * (nitems + 1));
    memset(&items[nitems], 0, sizeof *items);
    return &items[nitems++];
}

/* Is the identifier `word` a whole token of s? Returns its position. */
static const char *find_token(const char *s, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = strstr(s, word); p; p = strstr(p + 1, word))
        if ((p == s || !is_ident((unsigned char)p[-1])) &&
            !is_ident((unsigned char)p[n]))
            return p;
    return NULL;
}

static void add_statement(struct header *h, const char *text, char *comment,
                          int line)
{
    char *norm = normalize(text);
    const char *m = find_token(norm, export_macro);
    if (strncmp(norm, "typedef", 7) == 0 && !is_ident((unsigned char)norm[7])) {
        const char *p = strstr(norm, "(*");
        const char *e;
        struct item *it;
        /* Undocumented and opaque types say nothing a page needs. */
        if (!comment || !(strchr(norm, '(') || strchr(norm, '{')))
            goto out;
        if (p && !strchr(norm, '{')) {
            p += 2;
            while (*p == ' ')
                p++;
            for (e = p; is_ident((unsigned char)*e); e++)
                ;
        } else {
            e = norm + strlen(norm) - 1; /* the ';' */
            while (e > norm && !is_ident((unsigned char)e[-1]))
                e--;
            for (p = e; p > norm && is_ident((unsigned char)p[-1]); p--)
                ;
        }
        it = new_item();
        it->kind = K_TYPE;
        it->name = xstrndup(p, (size_t)(e - p));
        it->shown = 1;
        it->decl = xstrndup(text, strlen(text));
        it->comment = strip_comment(comment, strlen(comment));
        it->h = h;
    } else if (m) {
        struct buf b = {0};
        const char *paren, *e, *p;
        struct item *it;
        buf_add(&b, norm, (size_t)(m - norm));
        p = m + strlen(export_macro);
        while (*p == ' ')
            p++;
        buf_add(&b, p, strlen(p));
        paren = strchr(b.p, '(');
        if (!paren)
            die("%s:%d: %s declares something other than a function", h->path,
                line, export_macro);
        for (e = paren; e > b.p && e[-1] == ' '; e--)
            ;
        for (p = e; p > b.p && is_ident((unsigned char)p[-1]); p--)
            ;
        if (p == e)
            die("%s:%d: cannot find the function's name", h->path, line);
        it = new_item();
        it->kind = K_FUNC;
        it->name = xstrndup(p, (size_t)(e - p));
        it->decl = b.p;
        it->h = h;
        if (find_item(it->name, strlen(it->name), K_FUNC) != it)
            die("%s:%d: %s declared twice", h->path, line, it->name);
        if (!comment) {
            fprintf(stderr,
                    "mangen: %s:%d: %s has no comment right above it: "
                    "document every public function\n",
                    h->path, line, it->name);
            failed = 1;
            it->comment = xstrndup("", 0);
        } else {
            it->comment = strip_comment(comment, strlen(comment));
            if (!*it->comment) {
                fprintf(stderr, "mangen: %s:%d: %s: empty comment\n", h->path,
                        line, it->name);
                failed = 1;
            }
        }
    } else if (comment && strncmp(norm, "struct ", 7) == 0 &&
               strchr(norm, '{')) {
        /* A struct definition: its comment, not its (private) fields. */
        const char *p = norm + 7, *e = p;
        struct item *it;
        while (is_ident((unsigned char)*e))
            e++;
        it = new_item();
        it->kind = K_TYPE;
        it->name = xstrndup(p, (size_t)(e - p));
        it->decl = xstrndup(text, strlen(text));
        it->comment = strip_comment(comment, strlen(comment));
        it->h = h;
    }
out:
    free(norm);
}

/* A preprocessor line starting at s: records the version defines; returns
 * the end of the directive (continuations included). */
static const char *directive(const char *s, int *line, int *skip)
{
    struct buf b = {0};
    const char *p = s;
    char name[128];
    long v;
    while (*p && *p != '\n') {
        if (p[0] == '\\' && p[1] == '\n') {
            p += 2;
            (*line)++;
            continue;
        }
        if (p[0] == '/' && p[1] == '*') {
            const char *e = strstr(p + 2, "*/");
            if (!e)
                die("unterminated comment");
            for (; p < e; p++)
                *line += *p == '\n';
            p = e + 2;
            continue;
        }
        buf_addc(&b, *p++);
    }
    if (!b.p)
        buf_add(&b, "", 0);
    char *d = normalize(b.p + 1);
    free(b.p);
    /* C++ only blocks (extern "C" {) are skipped whole. */
    if (*skip > 0) {
        if (strncmp(d, "if", 2) == 0)
            (*skip)++;
        else if (strncmp(d, "endif", 5) == 0)
            (*skip)--;
    } else if (strcmp(d, "ifdef __cplusplus") == 0 ||
               strcmp(d, "if defined(__cplusplus)") == 0) {
        *skip = 1;
    } else if (sscanf(d, "define %127s %ld", name, &v) == 2) {
        size_t n = strlen(name);
        static const char *const suffix[3] = {
            "_VERSION_MAJOR", "_VERSION_MINOR", "_VERSION_PATCH"};
        for (int i = 0; i < 3; i++)
            if (n > 14 && strcmp(name + n - 14, suffix[i]) == 0)
                version[i] = v;
    }
    free(d);
    return p;
}

static void parse_header(struct header *h)
{
    char *text = read_file(h->path);
    const char *s = text;
    struct buf stmt = {0};
    int line = 1, stmt_line = 0, depth = 0, skip = 0, line_start = 1;
    int seen_stmt = 0;
    char *comment = NULL; /* the last comment that may document what follows */
    int comment_end = -10;
    char *stmt_comment = NULL;

    while (*s) {
        if (*s == '\n') {
            line++;
            line_start = 1;
            if (stmt.len)
                buf_addc(&stmt, '\n');
            s++;
            continue;
        }
        if (*s == ' ' || *s == '\t' || *s == '\r') {
            if (stmt.len)
                buf_addc(&stmt, *s);
            s++;
            continue;
        }
        if (line_start && *s == '#') {
            s = directive(s, &line, &skip);
            free(comment);
            comment = NULL;
            continue;
        }
        if (s[0] == '/' && s[1] == '*') {
            const char *e = strstr(s + 2, "*/");
            int at_start = line_start;
            if (!e)
                die("%s:%d: unterminated comment", h->path, line);
            e += 2;
            for (const char *p = s; p < e; p++)
                line += *p == '\n';
            if (!skip && !stmt.len && at_start) {
                free(comment);
                comment = xstrndup(s, (size_t)(e - s));
                comment_end = line;
                if (!seen_stmt && !h->filecomment &&
                    !strstr(comment, "SPDX-License-Identifier"))
                    h->filecomment = strip_comment(comment, strlen(comment));
            } else if (stmt.len) {
                buf_addc(&stmt, ' ');
            }
            s = e;
            line_start = 0;
            continue;
        }
        if (s[0] == '/' && s[1] == '/') {
            while (*s && *s != '\n')
                s++;
            continue;
        }
        line_start = 0;
        if (skip) {
            s++;
            continue;
        }
        if (!stmt.len) {
            stmt_line = line;
            stmt_comment = NULL;
            if (comment && line - comment_end <= 1)
                stmt_comment = comment;
            else
                free(comment);
            comment = NULL;
        }
        if (*s == '"' || *s == '\'') {
            const char *p = s + 1;
            while (*p && *p != *s && *p != '\n')
                p += (p[0] == '\\' && p[1]) ? 2 : 1;
            if (*p == *s)
                p++;
            buf_add(&stmt, s, (size_t)(p - s));
            s = p;
            continue;
        }
        buf_addc(&stmt, *s);
        if (*s == '{')
            depth++;
        else if (*s == '}')
            depth--;
        else if (*s == ';' && depth == 0) {
            add_statement(h, stmt.p, stmt_comment, stmt_line);
            free(stmt_comment);
            stmt_comment = NULL;
            stmt.len = 0;
            seen_stmt = 1;
        }
        s++;
    }
    if (stmt.len && normalize(stmt.p)[0])
        die("%s: the file ends inside a declaration", h->path);
    free(stmt.p);
    free(comment);
    free(stmt_comment);
    free(text);
}

/* ------------------------------------------------------------------ */
/* Summaries (NAME section)                                            */
/* ------------------------------------------------------------------ */

/* Drops " (...)" groups at depth 0. */
static void drop_parens(char *s)
{
    char *w = s;
    int depth = 0;
    for (char *r = s; *r; r++) {
        if (*r == '(' && depth == 0 && r > s && r[-1] == ' ') {
            depth = 1;
            w--; /* the space before it */
            continue;
        }
        if (depth) {
            depth += (*r == '(') - (*r == ')');
            continue;
        }
        *w++ = *r;
    }
    *w = '\0';
}

/* The first clause of the first sentence of the comment. */
static char *summarize(const char *comment)
{
    struct buf b = {0};
    int depth = 0, quote = 0;
    size_t end;
    /* The first paragraph as one line. */
    for (const char *p = comment; *p; p++) {
        if (p[0] == '\n' && p[1] == '\n')
            break;
        buf_addc(&b, *p == '\n' ? ' ' : *p);
    }
    if (!b.p)
        return xstrndup("", 0);
    for (end = 0; b.p[end]; end++) {
        char c = b.p[end];
        if (c == '"')
            quote = !quote;
        if (quote)
            continue;
        depth += (c == '(') - (c == ')');
        if (depth)
            continue;
        if (c == ':' || c == ';')
            break;
        if (c == '.' &&
            (b.p[end + 1] == '\0' ||
             (b.p[end + 1] == ' ' && isupper((unsigned char)b.p[end + 2]))))
            break;
    }
    b.p[end] = '\0';
    if (strlen(b.p) > 60)
        drop_parens(b.p);
    if (strlen(b.p) > 70 && strchr(b.p, ','))
        *strchr(b.p, ',') = '\0';
    return b.p;
}

/* ------------------------------------------------------------------ */
/* roff output                                                         */
/* ------------------------------------------------------------------ */

enum { ESC_CODE = 1, ESC_REFS = 2 };

/* Writes n bytes of s escaped for roff as (the rest of) one input line. */
static void esc(FILE *f, const char *s, size_t n, int flags, int line_start)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (line_start && (c == '.' || c == '\''))
            fputs("\\&", f);
        line_start = 0;
        if (c == '\\') {
            fputs("\\e", f);
        } else if (c == '-') {
            int joined = !(flags & ESC_CODE) && i > 0 && i + 1 < n &&
                         isalnum((unsigned char)s[i - 1]) &&
                         isalnum((unsigned char)s[i + 1]);
            fputs(joined ? "-" : "\\-", f);
        } else if (c >= 0x80) {
            unsigned long cp;
            int more = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : -1;
            if (more < 0 || i + (size_t)more >= n)
                die("invalid UTF-8 in a comment");
            cp = c & (0x3fu >> more);
            for (int k = 0; k < more; k++) {
                unsigned char d = (unsigned char)s[++i];
                if ((d & 0xc0) != 0x80)
                    die("invalid UTF-8 in a comment");
                cp = cp << 6 | (d & 0x3f);
            }
            fprintf(f, "\\[u%04lX]", cp);
        } else if ((flags & ESC_REFS) && is_ident(c) &&
                   (i == 0 || !is_ident((unsigned char)s[i - 1]))) {
            size_t e = i;
            while (e < n && is_ident((unsigned char)s[e]))
                e++;
            if (e < n && s[e] == '(' && find_item(s + i, e - i, K_FUNC))
                fprintf(f, "\\fB%.*s\\fP", (int)(e - i), s + i);
            else
                fprintf(f, "%.*s", (int)(e - i), s + i);
            i = e - 1;
        } else {
            fputc(c, f);
        }
    }
}

static void text_line(FILE *f, const char *s, int flags)
{
    esc(f, s, strlen(s), flags, 1);
    fputc('\n', f);
}

/* Text lines of a paragraph, each on its own line (roff fills them). */
static void fill_lines(FILE *f, char **v, int n)
{
    for (int i = 0; i < n; i++)
        text_line(f, v[i] + indent_of(v[i]), ESC_REFS);
}

/* Preformatted lines, their common indentation removed. */
static void nf_lines(FILE *f, char **v, int n)
{
    int base = 1 << 30;
    for (int i = 0; i < n; i++)
        if (indent_of(v[i]) < base)
            base = indent_of(v[i]);
    fputs(".RS 4\n.nf\n", f);
    for (int i = 0; i < n; i++)
        text_line(f, v[i] + base, ESC_CODE);
    fputs(".fi\n.RE\n", f);
}

/* An indented run that is prose (one indentation, no alignment). */
static int is_prose(char **v, int n)
{
    int wrapped = 0;
    if (n < 2)
        return 0;
    /* Filled text that was wrapped has long lines; a table has not. */
    for (int i = 0; i + 1 < n; i++)
        wrapped |= strlen(v[i]) >= 60;
    if (!wrapped)
        return 0;
    for (int i = 0; i < n; i++)
        if (indent_of(v[i]) != indent_of(v[0]) ||
            strstr(v[i] + indent_of(v[i]), "  "))
            return 0;
    return 1;
}

/* One paragraph (no blank lines). *first: nothing written yet in the
 * section, so no paragraph break is needed. */
static void paragraph(FILE *f, char **v, int n, int *first)
{
    int i = 0, in_list = 0;
    if (!*first && !bullet_len(v[0] + indent_of(v[0])))
        fputs(".PP\n", f);
    *first = 0;
    while (i < n) {
        int ind = indent_of(v[i]);
        int m = bullet_len(v[i] + ind);
        int j;
        if (m) {
            const char *mark = v[i] + ind;
            int t = ind + m;
            if (mark[0] == '-' || mark[0] == '*')
                fputs(".IP \\(bu 2\n", f);
            else
                fprintf(f, ".IP %.*s 4\n", m - 1, mark);
            text_line(f, mark + m, ESC_REFS);
            for (i++; i < n; i = j) {
                int k = indent_of(v[i]);
                if (k < t || bullet_len(v[i] + k))
                    break;
                for (j = i;
                     j < n && indent_of(v[j]) == k && !bullet_len(v[j] + k);
                     j++)
                    ;
                if (k == t)
                    fill_lines(f, v + i, j - i);
                else
                    nf_lines(f, v + i, j - i);
            }
            in_list = 1;
            continue;
        }
        if (in_list)
            fputs(".PP\n", f);
        in_list = 0;
        for (j = i; j < n && (indent_of(v[j]) > 0) == (ind > 0) &&
                    !bullet_len(v[j] + indent_of(v[j]));
             j++)
            ;
        if (ind == 0)
            fill_lines(f, v + i, j - i);
        else if (is_prose(v + i, j - i)) {
            fputs(".RS 4\n", f);
            fill_lines(f, v + i, j - i);
            fputs(".RE\n", f);
        } else
            nf_lines(f, v + i, j - i);
        i = j;
    }
}

typedef void paragraph_fn(FILE *f, char **v, int n, int *first);

/* Calls fn for each paragraph of v (blank lines separate them). */
static void each_paragraph(FILE *f, char **v, int n, paragraph_fn *fn,
                           int *first)
{
    for (int i = 0; i < n;) {
        int j;
        if (blank(v[i])) {
            i++;
            continue;
        }
        for (j = i; j < n && !blank(v[j]); j++)
            ;
        fn(f, v + i, j - i, first);
        i = j;
    }
}

/* Renders text: paragraphs, lists, preformatted lines. */
static void blocks(FILE *f, char **v, int n, int *first)
{
    each_paragraph(f, v, n, paragraph, first);
}

static int starts_word(const char *s, const char *w)
{
    size_t n = strlen(w);
    return strncmp(s, w, n) == 0 && (s[n] == ' ' || s[n] == '\0');
}

/* ERRORS: one .TP per error code group ("-EINVAL, -EBADF as ..."). */
static void error_items(FILE *f, char **v, int n, int *first)
{
    (void)first;
    struct buf b = {0};
    /* One item per line starting "-E", and per "; -E" inside a line. */
    for (int i = 0; i < n; i++) {
        const char *s = v[i] + indent_of(v[i]);
        if (i == 0)
            s += strlen("Errors:") + indent_of(s + strlen("Errors:"));
        if (b.len && !(s[0] == '-' && s[1] == 'E'))
            buf_addc(&b, ' ');
        else if (b.len)
            buf_addc(&b, '\n');
        for (; *s; s++) {
            if (s[0] == ';' && s[1] == ' ' && s[2] == '-' && s[3] == 'E' &&
                isupper((unsigned char)s[4])) {
                buf_addc(&b, '\n');
                s++;
                continue;
            }
            buf_addc(&b, *s);
        }
    }
    int k;
    char **items_v = split_lines(b.p ? b.p : "", &k);
    for (int i = 0; i < k; i++) {
        const char *s = items_v[i], *t = s;
        /* The tag: "-EXXX" codes separated by ", " or " or ". */
        while (t[0] == '-' && t[1] == 'E' && isupper((unsigned char)t[2])) {
            const char *e = t + 1;
            while (isupper((unsigned char)*e) || isdigit((unsigned char)*e))
                e++;
            t = e;
            if (strncmp(t, ", -E", 4) == 0)
                t += 2;
            else if (strncmp(t, " or -E", 6) == 0)
                t += 4;
            else
                break;
        }
        if (t == s) {
            fputs(i ? ".PP\n" : "", f);
            text_line(f, s, ESC_REFS);
            continue;
        }
        fputs(".TP\n.B \"", f);
        esc(f, s, (size_t)(t - s), ESC_CODE, 0);
        fputs("\"\n", f);
        while (*t == ' ')
            t++;
        if (*t)
            text_line(f, t, ESC_REFS);
        else
            fputs("\\&\n", f);
    }
    free_lines(items_v, k);
    free(b.p);
}

/* A declaration in .nf, wrapped at the commas of its parameter list. */
static void synopsis_decl(FILE *f, const char *decl)
{
    char *s = normalize(decl);
    if (strchr(s, '{')) {
        /* A struct: as laid out in the source. */
        int n;
        char **v = split_lines(decl, &n);
        for (int i = 0; i < n; i++)
            if (!blank(v[i]))
                text_line(f, v[i], ESC_CODE);
        free_lines(v, n);
    } else {
        size_t col = 0, indent = 0;
        int depth = 0;
        const char *p = s;
        while (*p) {
            /* The next piece: up to and including a ',' at depth 1; the
             * space after it is dropped where the line breaks. */
            const char *e = p + (*p == ' ');
            for (; *e; e++) {
                if (*e == '(' && ++depth == 1 && e[1] != ')')
                    indent = (size_t)(e - p) + 1 + col;
                if (*e == ')')
                    depth--;
                if (*e == ',' && depth == 1) {
                    e++;
                    break;
                }
            }
            if (col > indent && col + (size_t)(e - p) > WRAP) {
                fprintf(f, "\n%*s", (int)indent, "");
                col = indent;
                p += *p == ' ';
            }
            esc(f, p, (size_t)(e - p), ESC_CODE | ESC_REFS, col == 0);
            col += (size_t)(e - p);
            p = e;
        }
        fputc('\n', f);
    }
    free(s);
}

static FILE *open_page(const char *name, const char *sec)
{
    char path[4096];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s.%s", outdir, name, sec);
    f = fopen(path, "w");
    if (!f)
        die("%s: cannot write", path);
    return f;
}

static void close_page(FILE *f)
{
    if (ferror(f) || fclose(f) != 0)
        die("write error");
}

static void page_head(FILE *f, const char *name, const char *sec,
                      const char *src, const char *summary)
{
    /* From "include/", so no build machine path lands in the page. */
    if (strstr(src, "include/"))
        src = strstr(src, "include/");
    fprintf(f, ".\\\" Generated by mangen from %s; do not edit.\n", src);
    fprintf(f, ".TH %s %s \"\" \"mempipe %s\" \"mempipe manual\"\n", name, sec,
            version_str);
    /* No hyphenation (it would split identifiers), ragged right. */
    fputs(".nh\n.ad l\n", f);
    fprintf(f, ".SH NAME\n%s \\- ", name);
    text_line(f, summary, 0);
}

static void synopsis_head(FILE *f, const struct header *h)
{
    fputs(".SH SYNOPSIS\n.nf\n", f);
    fprintf(f, ".B #include <%s>\n", h->inc);
}

static void link_line(FILE *f, const struct header *h)
{
    fputs("Link with \\fI", f);
    esc(f, "-l", 2, ESC_CODE, 0);
    esc(f, h->lib, strlen(h->lib), 0, 0);
    fputs("\\fP (pkg-config \\fB", f);
    esc(f, h->pkg, strlen(h->pkg), 0, 0);
    fputs("\\fP).\n", f);
}

/* The functions named "name()" in text, appended to refs (no repeats). */
static void collect_refs(const char *text, const struct item **refs, int *n,
                         int max)
{
    for (const char *p = text; *p; p++) {
        const char *e;
        const struct item *it;
        if (!is_ident((unsigned char)*p) ||
            (p > text && is_ident((unsigned char)p[-1])))
            continue;
        for (e = p; is_ident((unsigned char)*e); e++)
            ;
        if (*e == '(' && (it = find_item(p, (size_t)(e - p), K_FUNC))) {
            int k;
            for (k = 0; k < *n && refs[k] != it; k++)
                ;
            if (k == *n && *n < max)
                refs[(*n)++] = it;
        }
        p = e - 1;
    }
}

static int cmp_ref(const void *a, const void *b)
{
    return strcmp((*(const struct item *const *)a)->name,
                  (*(const struct item *const *)b)->name);
}

static const char *concepts_page(void)
{
    static char name[256];
    const char *b, *e;
    if (!template_path)
        return "mempipe";
    b = strrchr(template_path, '/');
    b = b ? b + 1 : template_path;
    e = strchr(b, '.');
    snprintf(name, sizeof name, "%.*s", (int)(e ? e - b : (long)strlen(b)), b);
    return name;
}

static void see_also(FILE *f, const struct item **refs, int n,
                     const struct header *h)
{
    if (n > 0)
        qsort(refs, (size_t)n, sizeof *refs, cmp_ref);
    fputs(".SH SEE ALSO\n", f);
    for (int i = 0; i < n; i++)
        fprintf(f, ".BR %s (3),\n", refs[i]->name);
    if (h && h->overview)
        fprintf(f, ".BR %s (7),\n", h->lib);
    fprintf(f, ".BR %s (7)\n", concepts_page());
}

static void function_page(const struct item *fn)
{
    FILE *f = open_page(fn->name, "3");
    const struct item *refs[256];
    const struct item *types[32];
    int nrefs = 0, ntypes = 0, n, first = 1;
    char **v = split_lines(fn->comment, &n);
    struct buf desc = {0}, ret = {0}, err = {0};

    /* The documented types the prototype uses. */
    for (size_t i = 0; i < nitems && ntypes < 32; i++)
        if (items[i].kind == K_TYPE && find_token(fn->decl, items[i].name))
            types[ntypes++] = &items[i];

    page_head(f, fn->name, "3", fn->h->path, fn->summary);
    synopsis_head(f, fn->h);
    for (int i = 0; i < ntypes; i++) {
        if (!types[i]->shown)
            continue;
        fputs(".sp\n", f);
        synopsis_decl(f, types[i]->decl);
    }
    fputs(".sp\n", f);
    synopsis_decl(f, fn->decl);
    fputs(".fi\n.PP\n", f);
    link_line(f, fn->h);

    /* Sort the lines: "Returns ..." and "Errors: ..." blocks out. */
    for (int i = 0; i < n;) {
        struct buf *to = &desc;
        int j = i + 1;
        if (starts_word(v[i], "Returns") || starts_word(v[i], "Errors:")) {
            to = v[i][0] == 'R' ? &ret : &err;
            /* Up to the end of the sentence, plus indented continuations. */
            while (j < n && !blank(v[j]) &&
                   (indent_of(v[j]) > 0 ||
                    (v[j - 1][strlen(v[j - 1]) - 1] != '.' &&
                     !starts_word(v[j], "Returns") &&
                     !starts_word(v[j], "Errors:"))))
                j++;
            if (to->len)
                buf_add(to, "\n\n", 2);
        }
        for (int k = i; k < j; k++) {
            buf_add(to, v[k], strlen(v[k]));
            buf_addc(to, '\n');
        }
        i = j;
    }
    fputs(".SH DESCRIPTION\n", f);
    {
        int k;
        char **d = split_lines(desc.p ? desc.p : "", &k);
        blocks(f, d, k, &first);
        free_lines(d, k);
    }
    if (first)
        fputs("See the sections below.\n", f);
    for (int i = 0; i < ntypes; i++) {
        int k, tfirst = 1;
        char **d = split_lines(types[i]->comment, &k);
        fputs(".SS \"The ", f);
        esc(f, types[i]->name, strlen(types[i]->name), 0, 0);
        fputs(" type\"\n", f);
        blocks(f, d, k, &tfirst);
        free_lines(d, k);
        collect_refs(types[i]->comment, refs, &nrefs, 256);
    }
    if (ret.len) {
        int k, rfirst = 1;
        char **d = split_lines(ret.p, &k);
        fputs(".SH RETURN VALUE\n", f);
        for (int i = 0; i < k; i++) /* as filled text */
            if (!blank(d[i]))
                memmove(d[i], d[i] + indent_of(d[i]), strlen(d[i]) + 1);
        blocks(f, d, k, &rfirst);
        free_lines(d, k);
    }
    if (err.len) {
        int k, efirst = 1;
        char **d = split_lines(err.p, &k);
        fputs(".SH ERRORS\n", f);
        each_paragraph(f, d, k, error_items, &efirst);
        free_lines(d, k);
    }
    collect_refs(fn->comment, refs, &nrefs, 256);
    for (int i = 0; i < nrefs; i++)
        if (refs[i] == fn)
            refs[i] = refs[--nrefs];
    see_also(f, refs, nrefs, fn->h);
    close_page(f);
    free_lines(v, n);
    free(desc.p);
    free(ret.p);
    free(err.p);
}

/* The list of a header's functions, as .TP entries. */
static void function_list(FILE *f, const struct header *h)
{
    for (size_t i = 0; i < nitems; i++) {
        if (items[i].kind != K_FUNC || items[i].h != h)
            continue;
        fprintf(f, ".TP\n.BR %s (3)\n", items[i].name);
        text_line(f, items[i].summary, ESC_REFS);
    }
}

/* LIB(7): the header's file comment. */
static void overview_page(const struct header *h)
{
    FILE *f = open_page(h->lib, "7");
    const char *c = h->filecomment ? h->filecomment : "";
    const char *nl = strchr(c, '\n');
    const char *dash = strstr(c, " \xe2\x80\x94 ");
    char *summary;
    int n, first = 1;
    char **v;
    /* "mempipe/uv.h — what it is." gives the summary. */
    if (dash && (!nl || dash < nl)) {
        size_t l = nl ? (size_t)(nl - dash - 5) : strlen(dash + 5);
        summary = xstrndup(dash + 5, l);
        if (l && summary[l - 1] == '.')
            summary[l - 1] = '\0';
        c = nl ? nl + 1 : "";
    } else {
        summary = summarize(c);
    }
    page_head(f, h->lib, "7", h->path, summary);
    synopsis_head(f, h);
    fputs(".fi\n", f);
    fputs(".SH DESCRIPTION\n", f);
    v = split_lines(c, &n);
    blocks(f, v, n, &first);
    free_lines(v, n);
    fputs(".SH FUNCTIONS\n", f);
    function_list(f, h);
    see_also(f, NULL, 0, NULL);
    close_page(f);
    free(summary);
}

static void concepts(void)
{
    char *t = read_file(template_path);
    int n;
    char **v = split_lines(t, &n);
    FILE *f = open_page(concepts_page(), "7");
    for (int i = 0; i < n; i++) {
        const char *s = v[i], *p;
        if (i == n - 1 && !*s)
            break;
        if (strcmp(s, "@FUNCTIONS@") == 0) {
            for (int k = 0; k < nheaders; k++) {
                const struct header *h = &headers[k];
                fprintf(f, ".SS \"<%s>\"\n", h->inc);
                if (h->overview)
                    fprintf(f, "See also\n.BR %s (7).\n", h->lib);
                function_list(f, h);
            }
            continue;
        }
        while ((p = strstr(s, "@VERSION@"))) {
            fwrite(s, 1, (size_t)(p - s), f);
            fputs(version_str, f);
            s = p + 9;
        }
        fprintf(f, "%s\n", s);
    }
    close_page(f);
    free_lines(v, n);
    free(t);
}

static void usage(void)
{
    fputs("usage: mangen -o DIR [-t PAGE.7.in] [-e EXPORT_MACRO]\n"
          "              { [-I INCLUDE] [-L LIB] [-P PKG] [-7] HEADER } ...\n",
          stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    const char *inc = NULL, *lib = NULL, *pkg = NULL;
    int overview = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] == '-' && a[1] && a[2] == '\0' && strchr("otIeLP", a[1])) {
            const char *val;
            if (++i >= argc)
                usage();
            val = argv[i];
            switch (a[1]) {
            case 'o':
                outdir = val;
                break;
            case 't':
                template_path = val;
                break;
            case 'e':
                export_macro = val;
                break;
            case 'I':
                inc = val;
                break;
            case 'L':
                lib = val;
                break;
            default:
                pkg = val;
                break;
            }
        } else if (strcmp(a, "-7") == 0) {
            overview = 1;
        } else if (a[0] == '-') {
            usage();
        } else {
            struct header *h;
            const char *p = strstr(a, "include/");
            if (nheaders == MAX_HEADERS)
                die("too many headers");
            h = &headers[nheaders++];
            h->path = a;
            h->inc = inc ? inc : p ? p + 8 : a;
            h->lib = lib ? lib : "mempipe";
            h->pkg = pkg ? pkg : "mempipe";
            h->overview = overview;
            inc = lib = pkg = NULL;
            overview = 0;
        }
    }
    if (!outdir || nheaders == 0)
        usage();
    for (int i = 0; i < nheaders; i++)
        parse_header(&headers[i]);
    if (failed)
        return 1;
    if (version[0] < 0 || version[1] < 0 || version[2] < 0)
        die("no *_VERSION_MAJOR/MINOR/PATCH defines in the headers");
    snprintf(version_str, sizeof version_str, "%ld.%ld.%ld", version[0],
             version[1], version[2]);
    for (size_t i = 0; i < nitems; i++)
        items[i].summary = summarize(items[i].comment);
    /* "See f(): the same, for writing." borrows f's summary. */
    for (size_t i = 0; i < nitems; i++) {
        const char *s = items[i].summary;
        size_t l = strlen(s);
        const struct item *to;
        if (strncmp(s, "See ", 4) == 0 && l > 6 &&
            strcmp(s + l - 2, "()") == 0 &&
            (to = find_item(s + 4, l - 6, K_FUNC)) && to != &items[i] &&
            strncmp(to->summary, "See ", 4) != 0) {
            free(items[i].summary);
            items[i].summary = xstrndup(to->summary, strlen(to->summary));
        }
    }
    /* "Makes a pair" becomes "makes a pair"; "BIO ..." stays. */
    for (size_t i = 0; i < nitems; i++) {
        char *s = items[i].summary;
        if (isupper((unsigned char)s[0]) &&
            (s[1] == ' ' || islower((unsigned char)s[1])))
            s[0] = (char)tolower((unsigned char)s[0]);
    }
    for (size_t i = 0; i < nitems; i++)
        if (items[i].kind == K_FUNC)
            function_page(&items[i]);
    for (int i = 0; i < nheaders; i++)
        if (headers[i].overview)
            overview_page(&headers[i]);
    if (template_path)
        concepts();
    return 0;
}
