/* The release both programs report (latchd --version, latch --version, latch_build_info). */
#ifndef LATCH_VERSION_H
#define LATCH_VERSION_H

#define LATCH_VERSION "0.2.0"

#endif
