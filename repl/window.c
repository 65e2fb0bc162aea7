/* repl/window.c — the SDL2 preview window.
 *
 * One window for the whole session, opened on the first picture when a display
 * exists. It shows one picture at a time, fitted to the window (letterboxed on
 * dark grey) or at 100%, and keeps the pictures shown so far in a history.
 *
 *   ←/→   earlier / later picture     s   save as sdrepl-NNNN.png
 *   f     fit / 100%                  q, Esc, close button   hide
 *
 * The REPL owns the process: SDL gets no signal handlers (Ctrl-C stays the
 * REPL's), no screensaver inhibition, no grabs, no focus stealing, and closing
 * the window only hides it. Any failure disables the window with at most one
 * line on stderr; nothing waits on it. Events are handled when the REPL calls
 * preview_window_pump (the prompt does every 30 ms) and when a picture is shown.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* strdup, getcwd under -std=c11 */
#endif
#include "repl/window.h"

#include <langinfo.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <SDL.h>

#include "engine/error.h"        // sdr_last_error
#include "repl/window_history.h" // window_history_add, window_history_at
#include "repl/window_save.h"    // window_save_fresh, window_say

/* ---- state ------------------------------------------------------------- */

enum { WIN_UNTRIED, WIN_DISABLED, WIN_READY };
enum { FIRST_SIDE_MIN = 384 }; /* a first window at least this big, for small pictures */

enum { VIDEO_TRIES = 3 }; /* SDL's video start, tried again at the next picture */

static struct {
  int state;
  int video_failures; /* SDL_InitSubSystem(VIDEO) failures so far */
  SDL_Window *win;
  SDL_Renderer *ren;
  Uint32 id;
  int max_tex_w, max_tex_h; /* renderer limits; 0 = none */
  SDL_Texture *tex;         /* the picture shown; may be smaller than it (limits) */
  int tex_w, tex_h;
  Uint32 tex_format;
  int shown_w, shown_h; /* the picture's own size, for 100% */
  int visible;
  int actual_size; /* 1: 100%, 0: fit */
  window_history history;
  int cur;         /* history index shown when !live_shown */
  sdr_image *live; /* the live picture, while shown */
  char *live_title;
  int live_shown;
} W;

/* ---- opening ----------------------------------------------------------- */

static int window_wanted(void) {
  const char *no = getenv("SDREPL_NO_WINDOW");
  if (no && *no && strcmp(no, "0") != 0)
    return 0;
  const char *x11 = getenv("DISPLAY"), *wayland = getenv("WAYLAND_DISPLAY");
  return (x11 && *x11) || (wayland && *wayland);
}

static void set_hints(void) {
  /* Ctrl-C belongs to the REPL: SDL would otherwise turn SIGINT into SDL_QUIT. */
  SDL_SetHint(SDL_HINT_NO_SIGNAL_HANDLERS, "1");
  /* A preview is not a game: leave the screensaver, the compositor, the mouse
   * and the keyboard focus to the desktop. */
  SDL_SetHint(SDL_HINT_VIDEO_ALLOW_SCREENSAVER, "1");
  SDL_SetHint(SDL_HINT_VIDEO_X11_NET_WM_BYPASS_COMPOSITOR, "0");
  SDL_SetHint(SDL_HINT_MOUSE_AUTO_CAPTURE, "0");
  SDL_SetHint(SDL_HINT_GRAB_KEYBOARD, "0");
  SDL_SetHint(SDL_HINT_WINDOW_NO_ACTIVATION_WHEN_SHOWN, "1");
  /* Events wait while a picture is denoised; answering pings late would let
   * the desktop offer to "force quit" sdrepl and its loaded model with it. */
  SDL_SetHint(SDL_HINT_VIDEO_X11_NET_WM_PING, "0");
  SDL_SetHint(SDL_HINT_QUIT_ON_LAST_WINDOW_CLOSE, "0");
  SDL_SetHint(SDL_HINT_APP_NAME, "sdrepl");
  /* A preview belongs on the desktop: without this SDL falls back, when X11 and Wayland
   * fail, to drivers no one sees (offscreen, KMSDRM) and the window never appears, with
   * no word why. SDL_VIDEODRIVER set by the user still wins. */
  if (!getenv("SDL_VIDEODRIVER"))
    SDL_SetHint(SDL_HINT_VIDEODRIVER, "x11,wayland");
}

/* A first size that shows img whole: small pictures scaled up by a whole
 * factor, large ones scaled down to 90% of the screen. */
static void first_size(const sdr_image *img, int *w, int *h) {
  int iw = img->width, ih = img->height, side = iw > ih ? iw : ih;
  int k = side < FIRST_SIDE_MIN ? (FIRST_SIDE_MIN + side - 1) / side : 1;
  double sw = (double)iw * k, sh = (double)ih * k;
  SDL_Rect usable;
  if (SDL_GetDisplayUsableBounds(0, &usable) == 0 && usable.w > 0 && usable.h > 0) {
    double s = SDL_min(0.9 * usable.w / sw, 0.9 * usable.h / sh);
    if (s < 1) {
      sw *= s;
      sh *= s;
    }
  }
  *w = sw < 64 ? 64 : (int)sw;
  *h = sh < 64 ? 64 : (int)sh;
}

static void window_disable(const char *what) {
  fprintf(stderr, "sdrepl: no preview window (%s: %s)\n", what, SDL_GetError());
  if (W.ren)
    SDL_DestroyRenderer(W.ren);
  if (W.win)
    SDL_DestroyWindow(W.win);
  W.ren = NULL;
  W.win = NULL;
  SDL_QuitSubSystem(SDL_INIT_VIDEO);
  W.state = WIN_DISABLED;
}

/* Returns 1 when the window exists (created hidden, shown by the caller). */
static int window_open(const sdr_image *first) {
  if (W.state == WIN_READY)
    return 1;
  if (W.state == WIN_DISABLED || !window_wanted()) {
    W.state = WIN_DISABLED;
    return 0;
  }
  set_hints();
  if (SDL_InitSubSystem(SDL_INIT_VIDEO) != 0) {
    /* A display that did not answer may answer later: the next picture tries again. */
    W.state = ++W.video_failures < VIDEO_TRIES ? WIN_UNTRIED : WIN_DISABLED;
    const char *x11 = getenv("DISPLAY");
    fprintf(stderr, "sdrepl: no preview window on DISPLAY=%s (%s)%s\n", x11 ? x11 : "",
            SDL_GetError(), W.state == WIN_UNTRIED ? "; the next picture tries again" : "");
    return 0;
  }
  /* SDL turns on text input (and with it the input method) at start; the
   * window only needs key presses. */
  SDL_StopTextInput();
  int w, h;
  first_size(first, &w, &h);
  W.win = SDL_CreateWindow("sdrepl", SDL_WINDOWPOS_UNDEFINED, SDL_WINDOWPOS_UNDEFINED, w, h,
                           SDL_WINDOW_HIDDEN | SDL_WINDOW_RESIZABLE);
  if (!W.win) {
    window_disable("window");
    return 0;
  }
  /* No PRESENTVSYNC: a present must never wait on the display. */
  W.ren = SDL_CreateRenderer(W.win, -1, 0);
  if (!W.ren) {
    window_disable("renderer");
    return 0;
  }
  SDL_RendererInfo info;
  if (SDL_GetRendererInfo(W.ren, &info) == 0) {
    W.max_tex_w = info.max_texture_width;
    W.max_tex_h = info.max_texture_height;
  }
  W.id = SDL_GetWindowID(W.win);
  W.state = WIN_READY;
  return 1;
}

/* ---- the picture as a texture ------------------------------------------ */

/* Uploads img, scaled down by nearest pixel when the renderer cannot hold it
 * whole, with L widened to RGB. Returns 0, or -1 leaving no texture. */
static int texture_load(const sdr_image *img) {
  int tw = img->width, th = img->height;
  if (W.max_tex_w > 0 && tw > W.max_tex_w) {
    th = (int)((long long)th * W.max_tex_w / tw);
    tw = W.max_tex_w;
  }
  if (W.max_tex_h > 0 && th > W.max_tex_h) {
    tw = (int)((long long)tw * W.max_tex_h / th);
    th = W.max_tex_h;
  }
  tw = tw < 1 ? 1 : tw;
  th = th < 1 ? 1 : th;
  int oc = img->channels == 4 ? 4 : 3;
  Uint32 format = oc == 4 ? SDL_PIXELFORMAT_RGBA32 : SDL_PIXELFORMAT_RGB24;

  const uint8_t *pixels = img->pixels;
  uint8_t *scaled = NULL;
  if (img->channels == 1 || tw != img->width || th != img->height) {
    scaled = malloc((size_t)tw * th * oc);
    if (!scaled)
      return -1;
    int c = img->channels;
    for (int y = 0; y < th; y++) {
      const uint8_t *row = img->pixels + (size_t)((long long)y * img->height / th) * img->width * c;
      uint8_t *out = scaled + (size_t)y * tw * oc;
      for (int x = 0; x < tw; x++, out += oc) {
        const uint8_t *p = row + (size_t)((long long)x * img->width / tw) * c;
        for (int k = 0; k < oc; k++)
          out[k] = p[c == 1 ? 0 : k];
      }
    }
    pixels = scaled;
  }

  if (!W.tex || W.tex_w != tw || W.tex_h != th || W.tex_format != format) {
    if (W.tex)
      SDL_DestroyTexture(W.tex);
    W.tex = SDL_CreateTexture(W.ren, format, SDL_TEXTUREACCESS_STATIC, tw, th);
    W.tex_w = tw;
    W.tex_h = th;
    W.tex_format = format;
  }
  int rc = W.tex && SDL_UpdateTexture(W.tex, NULL, pixels, tw * oc) == 0 ? 0 : -1;
  free(scaled);
  if (rc != 0) {
    if (W.tex)
      SDL_DestroyTexture(W.tex);
    W.tex = NULL;
    return -1;
  }
  SDL_SetTextureBlendMode(W.tex, oc == 4 ? SDL_BLENDMODE_BLEND : SDL_BLENDMODE_NONE);
  W.shown_w = img->width;
  W.shown_h = img->height;
  return 0;
}

/* ---- drawing ----------------------------------------------------------- */

static void window_draw(void) {
  if (W.state != WIN_READY || !W.visible)
    return;
  int ow, oh;
  if (SDL_GetRendererOutputSize(W.ren, &ow, &oh) != 0)
    return;
  SDL_SetRenderDrawColor(W.ren, 40, 40, 40, 255);
  SDL_RenderClear(W.ren);
  if (W.tex) {
    double scale = 1;
    if (!W.actual_size)
      scale = SDL_min((double)ow / W.shown_w, (double)oh / W.shown_h);
    int dw = (int)(W.shown_w * scale + 0.5), dh = (int)(W.shown_h * scale + 0.5);
    /* Centered; at 100% a larger picture overhangs every side and is cropped. */
    SDL_Rect dst = {(ow - dw) / 2, (oh - dh) / 2, dw > 0 ? dw : 1, dh > 0 ? dh : 1};
    /* Enlarged pixels stay crisp squares; shrunk pictures are smoothed. */
    double tex_scale = (double)dw / W.tex_w;
    SDL_SetTextureScaleMode(W.tex, tex_scale >= 1 ? SDL_ScaleModeNearest : SDL_ScaleModeLinear);
    SDL_RenderCopy(W.ren, W.tex, NULL, &dst);
  }
  SDL_RenderPresent(W.ren);
}

/* ---- what is shown ----------------------------------------------------- */

static const sdr_image *shown_image(void) {
  if (W.live_shown)
    return W.live;
  const window_entry *e = window_history_at(&W.history, W.cur);
  return e ? e->img : NULL;
}

/* Xlib makes the UTF-8 title property window managers read (_NET_WM_NAME)
 * through the C library's locale, and in the "C" locale gives up on the
 * first non-ASCII byte, leaving the old title. Titles are UTF-8 (Lua source
 * is), so a UTF-8 LC_CTYPE is lent for the call when the process has none. */
static void set_title_utf8(const char *title) {
  char saved[128] = "";
  if (strcmp(nl_langinfo(CODESET), "UTF-8") != 0) {
    const char *cur = setlocale(LC_CTYPE, NULL);
    snprintf(saved, sizeof saved, "%s", cur ? cur : "C");
    if (!setlocale(LC_CTYPE, "C.UTF-8") && !setlocale(LC_CTYPE, "en_US.UTF-8"))
      saved[0] = 0;
  }
  SDL_SetWindowTitle(W.win, title);
  if (saved[0])
    setlocale(LC_CTYPE, saved);
}

static void set_title(void) {
  char title[512];
  if (W.live_shown) {
    snprintf(title, sizeof title, "%s (live)", W.live_title ? W.live_title : "sdrepl");
  } else {
    const window_entry *e = window_history_at(&W.history, W.cur);
    if (!e)
      return;
    snprintf(title, sizeof title, "%s (%d/%d)", *e->title ? e->title : "sdrepl", W.cur + 1,
             W.history.count);
  }
  set_title_utf8(title);
}

static void handle_event(const SDL_Event *ev, int *redraw);

/* Pumps pending events a few times, pausing briefly after a window was just
 * mapped, so the picture is on screen before the caller's next long work. */
static void settle(int just_mapped) {
  int rounds = just_mapped ? 5 : 1, redraw = 0;
  for (int i = 0; i < rounds; i++) {
    SDL_Event ev;
    while (SDL_PollEvent(&ev))
      handle_event(&ev, &redraw);
    if (redraw)
      window_draw();
    redraw = 0;
    if (just_mapped && i + 1 < rounds)
      SDL_Delay(10);
  }
}

/* Uploads and draws whatever is current; makes the window visible when
 * `show` is set. */
static void present(int show) {
  const sdr_image *img = shown_image();
  if (!img)
    return;
  if (texture_load(img) != 0)
    fprintf(stderr, "sdrepl: preview window cannot show a %dx%d picture (%s)\n", img->width,
            img->height, SDL_GetError());
  set_title();
  int just_mapped = 0;
  if (show && !W.visible) {
    SDL_ShowWindow(W.win);
    W.visible = 1;
    just_mapped = 1;
  }
  window_draw();
  settle(just_mapped);
}

static void live_clear(void) {
  sdr_image_free(W.live);
  free(W.live_title);
  W.live = NULL;
  W.live_title = NULL;
  W.live_shown = 0;
}

/* ---- keys -------------------------------------------------------------- */

static void step(int delta) {
  if (W.history.count == 0)
    return;
  /* From a live picture, a step first returns to the history where it was. */
  if (!W.live_shown)
    W.cur += delta;
  W.cur = W.cur < 0 ? 0 : W.cur >= W.history.count ? W.history.count - 1 : W.cur;
  live_clear();
  present(0);
}

static void save_shown(void) {
  const sdr_image *img = shown_image();
  if (!img)
    return;
  char path[64];
  if (window_save_fresh(img, path, sizeof path) != 0) {
    window_say("sdrepl: %s", sdr_last_error());
    return;
  }
  char *dir = getcwd(NULL, 0);
  window_say("saved %s/%s", dir ? dir : ".", path);
  free(dir);
}

static void hide(void) {
  if (!W.visible)
    return;
  SDL_HideWindow(W.win);
  W.visible = 0;
}

static void handle_key(SDL_Keycode key, int *redraw) {
  switch (key) {
  case SDLK_LEFT:
    step(-1);
    break;
  case SDLK_RIGHT:
    step(+1);
    break;
  case SDLK_HOME:
    step(-W.history.count);
    break;
  case SDLK_END:
    step(+W.history.count);
    break;
  case SDLK_s:
    save_shown();
    break;
  case SDLK_f:
    W.actual_size = !W.actual_size;
    *redraw = 1;
    break;
  case SDLK_q:
  case SDLK_ESCAPE:
    hide();
    break;
  default:
    break;
  }
}

/* ---- events ------------------------------------------------------------ */

static void handle_event(const SDL_Event *ev, int *redraw) {
  switch (ev->type) {
  case SDL_KEYDOWN:
    /* The only window: its keys count even when SDL saw no focus change
     * (windowID 0), as with focus-follows-pointer and no window manager. */
    if (ev->key.windowID == W.id || ev->key.windowID == 0)
      handle_key(ev->key.keysym.sym, redraw);
    break;
  case SDL_WINDOWEVENT:
    if (ev->window.windowID != W.id)
      break;
    switch (ev->window.event) {
    case SDL_WINDOWEVENT_CLOSE:
      hide(); /* closing never ends the session */
      break;
    case SDL_WINDOWEVENT_SHOWN:
    case SDL_WINDOWEVENT_EXPOSED:
    case SDL_WINDOWEVENT_SIZE_CHANGED:
    case SDL_WINDOWEVENT_RESTORED:
      *redraw = 1;
      break;
    default:
      break;
    }
    break;
  case SDL_RENDER_TARGETS_RESET:
  case SDL_RENDER_DEVICE_RESET:
    /* The renderer lost its textures: upload the picture again. */
    if (W.tex)
      SDL_DestroyTexture(W.tex);
    W.tex = NULL;
    if (shown_image())
      texture_load(shown_image());
    *redraw = 1;
    break;
  default: /* SDL_QUIT included: the REPL decides when the session ends */
    break;
  }
}

/* ---- the interface ----------------------------------------------------- */

void preview_window_show(const sdr_image *img, const char *title) {
  if (!img || !window_open(img))
    return;
  live_clear();
  if (window_history_add(&W.history, img, title) < 0) {
    /* No memory for the history: still show the picture, as a live one. */
    W.live = sdr_image_copy(img);
    W.live_title = title ? strdup(title) : NULL;
    W.live_shown = W.live != NULL;
  }
  W.cur = W.history.count - 1;
  present(1);
}

void preview_window_live(const sdr_image *img, const char *title) {
  /* A hidden window stays hidden (the user put it away) until the next show. */
  if (!img || (W.state == WIN_READY && !W.visible) || !window_open(img))
    return;
  sdr_image *copy = sdr_image_copy(img);
  if (!copy)
    return;
  if (!W.live_title || !title || strcmp(W.live_title, title) != 0) {
    free(W.live_title);
    W.live_title = title ? strdup(title) : NULL;
  }
  sdr_image_free(W.live);
  W.live = copy;
  W.live_shown = 1;
  present(1);
}

void preview_window_pump(void) {
  if (W.state != WIN_READY)
    return;
  int redraw = 0;
  SDL_Event ev;
  while (SDL_PollEvent(&ev))
    handle_event(&ev, &redraw);
  if (redraw)
    window_draw();
}

int preview_window_is_open(void) { return W.state == WIN_READY && W.visible; }

void preview_window_shutdown(void) {
  live_clear();
  window_history_clear(&W.history);
  if (W.state == WIN_READY) {
    if (W.tex)
      SDL_DestroyTexture(W.tex);
    SDL_DestroyRenderer(W.ren);
    SDL_DestroyWindow(W.win);
    SDL_QuitSubSystem(SDL_INIT_VIDEO);
    SDL_Quit();
  }
  memset(&W, 0, sizeof W);
}
