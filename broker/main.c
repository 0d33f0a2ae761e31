/*
 * main.c - the hsync executable: everything happens in broker_cli_main.
 */
#include "broker/cli.h"

int main(int argc, char **argv)
{
    return broker_cli_main(argc, argv);
}
