#ifndef SWARM_CFUZZER_H
#define SWARM_CFUZZER_H
#include <stddef.h>
#include <stdint.h>

/// libFuzzer's driver, for programs with a main of their own (libFuzzer >= 11). SwiftPM names an
/// executable's entry point `<target>_main` and aliases `main` to it, so the fuzz targets call
/// this from main.swift instead of relying on libFuzzer's main.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
