/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the simulator's scenario parser (gateway/sim.c) takes
 * any bytes and returns a scenario or an error naming file and line. A
 * parsed scenario is also run for a simulated hour, so what the parser
 * accepts is something the simulator can execute. */
#include <glib.h>
#include <stdint.h>
#include <stdlib.h>

#include "sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	GwSimScenario *sc = (GwSimScenario *) 0x1;
	GError *error = NULL;
	int rc = gw_sim_scenario_parse((const char *) data, size, "fuzz.txt", &sc, &error);

	if (rc < 0) {
		/* error set, output untouched, message names the file */
		if (!error || sc != (GwSimScenario *) 0x1 ||
		    !g_str_has_prefix(error->message, "fuzz.txt"))
			abort();
		g_error_free(error);
		return 0;
	}
	if (error || !sc)
		abort();
	struct gw_sim_config cfg = { .capacity = 4096 };
	GwSim *sim = gw_sim_new(&cfg, sc, 0, &error);
	if (sim) {
		GError *e2 = NULL;
		if (!gw_sim_advance(sim, INT64_C(3600000000), &e2))
			g_error_free(e2);
		gw_sim_free(sim);
	} else {
		g_error_free(error);
	}
	gw_sim_scenario_unref(sc);
	return 0;
}
