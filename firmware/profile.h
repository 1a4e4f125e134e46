/* Force-included (-include profile.h) into every translation unit of a profiling
 * build: the model's MCUGEN_LAYER_HOOK(i) then timestamps the start of layer i
 * (and, for i = NUM_LAYERS, the end of the last layer). */
#ifndef MCUGEN_PROFILE_H
#define MCUGEN_PROFILE_H

void mcugen_harness_mark(unsigned layer);

void mcugen_harness_feed(int begin);

#define MCUGEN_LAYER_HOOK(index) mcugen_harness_mark((unsigned)(index))
/* a layer running the previous one row by row: charge that work to the previous layer */
#define MCUGEN_FEED_BEGIN() mcugen_harness_feed(1)
#define MCUGEN_FEED_END() mcugen_harness_feed(0)

#endif
