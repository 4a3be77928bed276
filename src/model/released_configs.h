/* The config.json of every released Gemma 4 model (data/configs/ARCH),
 * compiled into the library by the Makefile; NULL-terminated. */
#ifndef G4_MODEL_RELEASED_CONFIGS_H
#define G4_MODEL_RELEASED_CONFIGS_H

typedef struct g4_released_config {
    const char *arch; /* "e2b", "e4b", "26b-a4b", "31b", "tiny" */
    const char *json;
} g4_released_config;

extern const g4_released_config g4_released_configs[];

#endif
