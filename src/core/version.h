/* The version of latch's programs (latchd --version, latch --version, latchd status). */
#ifndef LATCH_VERSION_H
#define LATCH_VERSION_H

#define LATCH_VERSION "0.2.0"

#endif
