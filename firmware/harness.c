/* Runs the generated model on every embedded test input and prints the results
 * with the line protocol of firmware/README.md. Shared by host and Arm builds:
 * only harness.h's functions differ between them. */
#include <stdint.h>

#include "harness.h"
#include "harness_glue.h" /* generated: the model's header under HARNESS_* names, and the inputs */

static int8_t output[HARNESS_OUTPUT_SIZE];

/* Lines are written in small pieces so the harness stays small whatever the output size. */
static char line[80];
static unsigned line_length;

static void flush(void)
{
    line[line_length] = '\0';
    harness_write(line);
    line_length = 0;
}

static void put_char(char c)
{
    if (line_length == sizeof line - 1u) {
        flush();
    }
    line[line_length++] = c;
}

static void put_text(const char *text)
{
    while (*text != '\0') {
        put_char(*text++);
    }
}

static void put_uint(uint32_t value)
{
    char digits[10];
    unsigned count = 0;
    do {
        digits[count++] = (char)('0' + (int)(value % 10u));
        value /= 10u;
    } while (value != 0u);
    while (count > 0u) {
        put_char(digits[--count]);
    }
}

static void put_int(int value)
{
    if (value < 0) {
        put_char('-');
        put_uint(0u - (uint32_t)value);
    } else {
        put_uint((uint32_t)value);
    }
}

static void put_hex_byte(int8_t value)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t bits = (uint8_t)value;
    put_char(hex[bits >> 4]);
    put_char(hex[bits & 15u]);
}

static void end_line(void)
{
    put_char('\n');
    flush();
}

#ifdef MCUGEN_PROFILE_H
static uint32_t spent[HARNESS_NUM_LAYERS + 1]; /* ticks charged to each layer (the last: after it) */
static uint32_t since;                     /* when the running charge began */
static unsigned charged;                   /* the layer being charged */
static unsigned next_mark; /* hooks must come in order 0..NUM_LAYERS, once each */
static int marks_out_of_order;

static void charge(uint32_t now, unsigned layer)
{
    if (next_mark > 0u) {
        spent[charged] += now - since;
    }
    since = now;
    charged = layer;
}

void mcugen_harness_mark(unsigned layer)
{
    uint32_t now = harness_clock_ticks();
    if (layer != next_mark || layer > HARNESS_NUM_LAYERS) {
        marks_out_of_order = 1;
        return;
    }
    charge(now, layer);
    next_mark++;
}

/* Between begin and end the running layer works for the one before it (MCUGEN_FEED_BEGIN). */
void mcugen_harness_feed(int begin)
{
    uint32_t now = harness_clock_ticks();
    unsigned layer = next_mark - 1u;
    if (next_mark == 0u || layer == 0u || layer >= HARNESS_NUM_LAYERS) {
        marks_out_of_order = 1;
        return;
    }
    charge(now, begin ? layer - 1u : layer);
}

static int report_layers(unsigned input)
{
    unsigned layer;
    if (marks_out_of_order || next_mark != HARNESS_NUM_LAYERS + 1u) {
        return -1;
    }
    put_text("ticks ");
    put_uint(input);
    for (layer = 0; layer < HARNESS_NUM_LAYERS; layer++) {
        put_char(' ');
        put_uint(spent[layer]);
    }
    end_line();
    for (layer = 0; layer <= HARNESS_NUM_LAYERS; layer++) {
        spent[layer] = 0;
    }
    next_mark = 0;
    return 0;
}
#endif

static int fail(unsigned input, const char *reason, int detail)
{
    put_text("error ");
    put_uint(input);
    put_char(' ');
    put_text(reason);
    put_char(' ');
    put_int(detail);
    end_line();
    return HARNESS_EXIT_MODEL_ERROR;
}

int main(void)
{
    unsigned input, k;

#ifdef MCUGEN_PROFILE_H
    harness_clock_start();
#endif
    put_text("begin ");
    put_uint(HARNESS_NUM_INPUTS);
    put_char(' ');
    put_uint(HARNESS_OUTPUT_SIZE);
    put_char(' ');
    put_uint(HARNESS_NUM_LAYERS);
    end_line();
    for (input = 0; input < HARNESS_NUM_INPUTS; input++) {
        int status;
#ifdef HARNESS_GUARD_FILL
        /* A different pattern per input, so a kernel that happened to write the old one is still caught. */
        uint8_t pattern = (uint8_t)(0xa5u ^ (input & 0xffu));
        HARNESS_GUARD_FILL(pattern);
#endif
        status = HARNESS_RUN(mcugen_inputs[input], output);
        if (status != 0) {
            return fail(input, "status", status);
        }
#ifdef HARNESS_GUARD_FILL
        if (HARNESS_GUARD_DAMAGE(pattern) != 0u) {
            return fail(input, "guard", (int)HARNESS_GUARD_DAMAGE(pattern));
        }
#endif
        put_text("out ");
        put_uint(input);
        put_char(' ');
        for (k = 0; k < HARNESS_OUTPUT_SIZE; k++) {
            put_hex_byte(output[k]);
        }
        end_line();
#ifdef MCUGEN_PROFILE_H
        if (report_layers(input) != 0) {
            return fail(input, "hooks", (int)next_mark);
        }
#endif
    }
    put_text("done ");
    put_uint(HARNESS_NUM_INPUTS);
    end_line();
    return HARNESS_EXIT_OK;
}
