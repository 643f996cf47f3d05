/*-------------------------------------------------------------------------
 *
 * command.h
 *	  The command record moved to codec/command.h; this name stays for the
 *	  files of src/jobs, which are being rewritten on another branch and
 *	  include it.  New code includes codec/command.h.
 *
 * src/storage/command.h
 *
 *-------------------------------------------------------------------------
 */
#include "codec/command.h"
