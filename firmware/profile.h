/* Force-included (-include profile.h) into every translation unit of a profiling
 * build: the model's MCUGEN_LAYER_HOOK(i) then timestamps the start of layer i
 * (and, for i = NUM_LAYERS, the end of the last layer). */
#ifndef MCUGEN_PROFILE_H
#define MCUGEN_PROFILE_H

void mcugen_harness_mark(unsigned layer);

#define MCUGEN_LAYER_HOOK(index) mcugen_harness_mark((unsigned)(index))

#endif
