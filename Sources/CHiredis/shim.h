#ifndef ISOBAR_CHIREDIS_SHIM_H
#define ISOBAR_CHIREDIS_SHIM_H
#include <hiredis/hiredis.h>
#endif
